from __future__ import annotations

import pytest
import torch
from tests.robust.conftest import fit, identity, linear_model
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.robust.attacks import AttackSpec, pixel_forward, run_attack
from cnnkit.robust.training import AdvTrainConfig, eps_at, perturb_batch


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
        ({"method": "fgsm"}, "--adv-train 'fgsm'"),
        ({"eps": 2}, "--adv-eps 2"),
        ({"steps": 0}, "--adv-steps 0"),
        ({"fraction": 1.5}, "adv.fraction"),
        ({"step_size": 0}, "--adv-step-size"),
    ],
)
def test_config_errors_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
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
