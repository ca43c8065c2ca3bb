from __future__ import annotations

import pickle
import re

import pytest
import torch
from tests.robust.conftest import fit, identity, linear_model
from torch import nn

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.robust.attacks import AttackSpec, pixel_forward, run_attack
from cnnkit.robust.training import AdversarialPerturb, AdvTrainConfig, eps_at, perturb_batch, train_hooks
from cnnkit.training.hooks import Hooks
from cnnkit.training.trainer import train


def pgd_accuracy(model, x, y, eps=0.1) -> float:
    r = run_attack(pixel_forward(model, identity), x, y, AttackSpec("pgd", eps, steps=10, seed=0))
    return float((r.logits_adv.argmax(1) == y).float().mean())


def test_eps_warms_up_linearly():
    cfg = AdvTrainConfig(eps=0.3, warmup_epochs=3)
    assert [eps_at(e, cfg) for e in (0, 1, 2, 5)] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    assert eps_at(0.5, cfg) == pytest.approx(0.15)
    assert eps_at(0, AdvTrainConfig(eps=0.3)) == 0.3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "fgsm"}, "adv.method (--adv-train) 'fgsm'"),
        ({"eps": 2}, "adv.eps (--adv-eps) 2"),
        ({"eps": 0}, "adv.eps (--adv-eps) 0"),
        ({"steps": 0}, "adv.steps (--adv-steps) 0"),
        ({"fraction": 1.5}, "adv.fraction (--adv-fraction) 1.5"),
        ({"fraction": 0}, "adv.fraction (--adv-fraction) 0"),
        ({"step_size": 0}, "adv.step_size (--adv-step-size)"),
        ({"warmup_epochs": -1}, "adv.warmup_epochs (--adv-warmup)"),
        ({"mode": "test"}, "adv.mode 'test'"),
    ],
)
def test_config_errors_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        AdvTrainConfig(**kwargs)


@pytest.mark.parametrize("method", ["fgsm-rs", "pgd"])
def test_perturb_batch_stays_in_the_ball_changes_only_the_fraction_and_is_deterministic(method):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)
    ).train()
    bn = model[1]
    before = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    x, y = torch.rand(8, 1, 6, 6), torch.randint(0, 3, (8,))
    cfg = AdvTrainConfig(method=method, eps=0.1, steps=3, fraction=0.5)
    outs = [perturb_batch(model, identity, x, y, torch.Generator().manual_seed(3), 0, cfg) for _ in range(2)]
    assert torch.equal(outs[0], outs[1])  # same generator state, same examples (resume parity)
    other = perturb_batch(model, identity, x, y, torch.Generator().manual_seed(4), 0, cfg)
    assert not torch.equal(outs[0], other)
    d = (outs[0] - x).abs().flatten(1).max(1).values
    assert (d[:4] <= 0.1 + 1e-6).all() and (d[:4] > 0.05).all() and (d[4:] == 0).all()
    assert outs[0].min() >= 0 and outs[0].max() <= 1 and not outs[0].requires_grad
    assert model.training and bn.track_running_stats  # left as it was
    assert (
        torch.equal(bn.running_mean, before[0])
        and torch.equal(bn.running_var, before[1])
        and int(bn.num_batches_tracked) == before[2]
    )
    assert all(p.grad is None for p in model.parameters())  # no gradient left on the weights


def test_perturb_batch_in_eval_mode_restores_train_mode():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(36, 3)).train()
    x, y = torch.rand(4, 1, 6, 6), torch.randint(0, 3, (4,))
    perturb_batch(model, identity, x, y, torch.Generator().manual_seed(0), 0, AdvTrainConfig(eps=0.1, mode="eval"))
    assert model.training


def test_adversarial_training_raises_pgd_accuracy_over_ordinary_training(task, plain_model):
    """The synthetic task has one robust pixel and 15 weak ones that eps 0.1 flips: ordinary training leans
    on the weak ones and falls under PGD; training on perturb_batch's examples leans on the robust one."""
    (x, y), (xt, yt) = task
    cfg = AdvTrainConfig(method="pgd", eps=0.1, steps=5)
    robust = fit(linear_model(), x, y, perturb=lambda m, n, xb, yb, g, e: perturb_batch(m, n, xb, yb, g, e, cfg))
    plain_pgd, robust_pgd = pgd_accuracy(plain_model, xt, yt), pgd_accuracy(robust, xt, yt)
    assert robust_pgd > plain_pgd + 0.3, (plain_pgd, robust_pgd)
    assert robust_pgd > 0.7
    with torch.no_grad():
        assert float((robust(identity(xt)).argmax(1) == yt).float().mean()) > 0.85  # still accurate on clean images


def test_fgsm_rs_training_is_bit_identical_given_the_generator(task):
    (x, y), _ = task
    cfg = AdvTrainConfig(method="fgsm-rs", eps=0.1, warmup_epochs=0.5)
    hook = lambda m, n, xb, yb, g, e: perturb_batch(m, n, xb, yb, g, e, cfg)  # noqa: E731
    a, b = fit(linear_model(), x, y, steps=30, perturb=hook), fit(linear_model(), x, y, steps=30, perturb=hook)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# ---- the run's hooks (AdversarialPerturb, train_hooks) ----------------------------------------------------------


def _linear(inp: int = 16, classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(inp, classes)).train()


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return 0.4 + 0.2 * torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_hook_warms_eps_up_over_its_1_based_epochs():
    hook = AdversarialPerturb(AdvTrainConfig(method="fgsm-rs", eps=0.2, warmup_epochs=2))
    x, y = _batch()
    sizes = [
        float((hook(_linear(), identity, x, y, torch.Generator().manual_seed(0), e) - x).abs().max()) for e in (1, 2, 3)
    ]
    assert sizes == pytest.approx([0.1, 0.2, 0.2], abs=1e-6)  # fgsm-rs's 1.25 * eps step reaches the ball's edge


@pytest.mark.parametrize("n", [4, 9])
def test_hook_takes_one_number_from_the_run_generator_whatever_the_batch(n):
    """So every process's generator advances alike (each takes its share) and a resumed run replays the same steps."""
    x, y = _batch(n)
    g = torch.Generator().manual_seed(5)
    AdversarialPerturb(AdvTrainConfig(method="pgd", eps=0.1, steps=2))(_linear(), identity, x, y, g, 1)
    ref = torch.Generator().manual_seed(5)
    torch.randint(0, 2**62, (1,), generator=ref)
    assert torch.equal(g.get_state(), ref.get_state())


def test_hook_gives_each_process_its_own_random_start(monkeypatch):
    import cnnkit.robust.training as rt

    hook, (x, y) = AdversarialPerturb(AdvTrainConfig(method="fgsm-rs", eps=0.1)), _batch()
    rank0 = hook(_linear(), identity, x, y, torch.Generator().manual_seed(0), 1)
    monkeypatch.setattr(rt, "_rank", lambda: 1)
    rank1 = hook(_linear(), identity, x, y, torch.Generator().manual_seed(0), 1)
    assert not torch.equal(rank0, rank1)
    assert float((rank1 - x).abs().max()) <= 0.1 + 1e-6


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_hook_attacks_in_the_run_precision(precision, dtype):
    model, seen = _linear(), []
    model[1].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x, y = _batch()
    out = AdversarialPerturb(AdvTrainConfig(method="pgd", eps=0.1, steps=2), precision)(
        model, identity, x, y, torch.Generator().manual_seed(0), 1
    )
    assert seen == [dtype, dtype]  # two PGD steps, each one forward pass
    assert out.dtype == torch.float32 and float((out - x).abs().max()) <= 0.1 + 1e-6


def test_hook_attacks_the_bare_module_under_ddp(tmp_path):
    """Forward passes through the DDP wrapper without an optimiser step would upset its gradient reducer."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        inner = _linear()
        ddp = DistributedDataParallel(inner)
        calls = {"ddp": 0, "inner": 0}
        ddp.register_forward_pre_hook(lambda m, i: calls.__setitem__("ddp", calls["ddp"] + 1))
        inner.register_forward_pre_hook(lambda m, i: calls.__setitem__("inner", calls["inner"] + 1))
        hook, (x, y) = AdversarialPerturb(AdvTrainConfig(method="pgd", eps=0.1, steps=3)), _batch()
        for _ in range(2):  # perturb, then an ordinary DDP step on the result, twice
            xa = hook(ddp, identity, x, y, torch.Generator().manual_seed(0), 1)
            torch.nn.functional.cross_entropy(ddp(identity(xa)), y).backward()
        assert calls == {"ddp": 2, "inner": 2 + 2 * 3}  # the attack's 3 passes per step went to the module
        assert inner[1].weight.grad is not None and torch.isfinite(inner[1].weight.grad).all()
    finally:
        dist.destroy_process_group()


def test_hook_refuses_multi_label_batches():
    x, _ = _batch()
    with pytest.raises(ConfigError, match="multi-label"):
        AdversarialPerturb(AdvTrainConfig())(_linear(), identity, x, torch.ones(8, 3), torch.Generator(), 1)


def test_train_hooks_from_the_config():
    assert train_hooks(Config()) == Hooks()  # adv.method none: nothing added
    cfg = Config().with_overrides(
        {"data.dataset": "mnist", "adv.method": "pgd", "adv.eps": 0.2, "adv.steps": 3, "adv.robust_n": 50}
    )
    mine = lambda run: None  # noqa: E731
    hooks = train_hooks(cfg, Hooks(on_end=mine), quiet=True)
    assert hooks.perturb_batch == AdversarialPerturb(
        AdvTrainConfig("pgd", 0.2, 3), "auto"
    )  # mnist's recipe: precision auto
    assert hooks.on_end.then is mine and (hooks.on_end.n, hooks.on_end.steps, hooks.on_end.quiet) == (50, 10, True)
    assert pickle.loads(pickle.dumps(train_hooks(cfg))) == train_hooks(cfg)  # the launcher sends them to its workers
    with pytest.raises(ConfigError, match=r"adv.method \(--adv-train\) 'fgsm'"):
        train_hooks(Config().with_overrides({"adv.method": "fgsm"}))


def test_train_alone_refuses_an_adversarial_config():
    with pytest.raises(ConfigError, match="train_hooks"):
        train(Config().with_overrides({"adv.method": "pgd"}), quiet=True)


# ---- through the engine: resume parity ---------------------------------------------------------------------------

# 100 training images, 4 steps per epoch, 2 epochs; step checkpoints at global steps 2, 6
TINY_ADV = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},  # with batch norm
    "train.epochs": 2,
    "train.batch_size": 25,
    "train.checkpoint_every": 2,
    "runtime.num_threads": 1,
    "run.html_report": False,
    "adv.method": "pgd",
    "adv.eps": 0.1,
    "adv.steps": 2,
    "adv.warmup_epochs": 2,
    "adv.fraction": 0.5,
    "adv.robust_n": 40,
    "adv.robust_steps": 3,
}


def _adv_cfg(runs, name: str, **extra) -> Config:
    return Config().with_overrides({**TINY_ADV, "run.runs_dir": str(runs), "run.name": name, **extra})


def _run_files(run_dir) -> tuple[list[dict], dict, dict]:
    """metrics.csv without its seconds, summary.json's test and robust numbers, last/best weights."""
    import csv
    import json

    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader((run_dir / "metrics.csv").open())]
    s = json.loads((run_dir / "summary.json").read_text())
    weights = {
        n: torch.load(run_dir / n, map_location="cpu", weights_only=True)["state_dict"]
        for n in ("last.ckpt", "best.ckpt")
    }
    return rows, {"test": s["test"], "robust": s["robust"], "adv": s["adversarial_training"]}, weights


@pytest.fixture(scope="module")
def adv_reference(tmp_path_factory):
    cfg = _adv_cfg(tmp_path_factory.mktemp("ref"), "ref")
    return train(cfg, quiet=True, hooks=train_hooks(cfg, quiet=True)).dir


@pytest.mark.parametrize("epoch, step, via", [(1, 3, "api"), (2, 1, "cli")])
def test_adversarial_run_resumes_to_the_same_weights_and_numbers(adv_reference, tmp_path, epoch, step, via):
    """(1, 3): from the step checkpoint at step 2, mid-warm-up; (2, 1): from the end of epoch 1, through `cnnkit train --resume`."""
    from tests.training.crash import Crash, crash_at

    from cnnkit.cli import main
    from cnnkit.training.trainer import resume_config

    cfg = _adv_cfg(tmp_path, "r")
    with pytest.raises(Crash):
        train(cfg, quiet=True, hooks=train_hooks(cfg, quiet=True), on_step=crash_at(epoch, step))
    if via == "api":
        train(resume=tmp_path / "r", quiet=True, hooks=train_hooks(resume_config(tmp_path / "r"), quiet=True))
    else:
        assert main(["train", "--resume", str(tmp_path / "r"), "--quiet"]) == 0
    (rows_a, nums_a, w_a), (rows_b, nums_b, w_b) = _run_files(adv_reference), _run_files(tmp_path / "r")
    assert rows_a == rows_b and nums_a == nums_b
    for name in w_a:
        assert all(torch.equal(w_a[name][k], w_b[name][k]) for k in w_a[name]), name


def test_adversarial_examples_change_the_training(adv_reference, tmp_path):
    plain = train(_adv_cfg(tmp_path, "plain", **{"adv.method": "none"}), quiet=True)
    _, nums, w_adv = _run_files(adv_reference)
    w_plain = torch.load(plain.dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert not all(torch.equal(w_plain[k], w_adv["last.ckpt"][k]) for k in w_plain)
    assert "robust" not in plain.summary and "adversarial_training" not in plain.summary
    r = nums["robust"]
    assert (r["attack"], r["eps"], r["n"], r["split"]) == ("PGD-3", 0.1, 40, "test")
    assert 0 <= r["robust_accuracy"] <= r["clean_accuracy"] <= 1
    assert nums["adv"] == {
        "method": "pgd", "eps": 0.1, "steps": 2, "step_size": pytest.approx(0.125), "warmup_epochs": 2, "fraction": 0.5, "mode": "train",
    }  # fmt: skip


def test_report_md_rows_follow_the_accuracy_row_or_make_a_section(tmp_path):
    from cnnkit.robust.training import _add_report_md_rows

    robust = {"attack": "PGD-10", "eps": 0.1, "n": 50, "robust_accuracy": 0.5, "clean_accuracy": 0.9}
    cfg = AdvTrainConfig(method="pgd", eps=0.1, steps=5, warmup_epochs=2, fraction=0.5)
    md = tmp_path / "report.md"
    md.write_text("# Run\n\n| | |\n|---|---|\n| val accuracy | **90.00 %** |\n| val loss | 0.3 |\n")
    _add_report_md_rows(md, "val", robust, cfg)
    assert md.read_text().splitlines()[4:8] == [
        "| val accuracy | **90.00 %** |",
        "| adversarial training | PGD-5 at eps 0.1 (25.5/255), step 0.05, eps warm-up over 2 epochs, 50 % of each batch |",
        "| val accuracy under PGD-10 (L∞, eps 0.1 = 25.5/255) | **50.00 %** (50 images, seeded subset; clean on them: 90.00 %) |",
        "| val loss | 0.3 |",
    ]
    md.write_text("# Run\n\nno table\n")
    _add_report_md_rows(md, "test", robust, cfg)
    assert md.read_text().splitlines()[3:7] == ["", "## Robustness", "", "| | |"]
