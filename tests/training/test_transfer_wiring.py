"""The trainer's use of transfer learning (cnnkit.models.transfer): starting weights,
frozen backbone in `head` mode, discriminative rates in `full` mode, mixup from the config."""

import torch

from cnnkit.checkpoint import load_checkpoint
from cnnkit.config import Config
from cnnkit.training.trainer import train

TINY = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
    "train.epochs": 1,
    "train.batch_size": 25,
    "run.html_report": False,
}


def _state(path):
    return load_checkpoint(path)["state_dict"]


def test_head_finetune_from_local_weights_freezes_the_backbone(tmp_path):
    base = train(Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path), "run.name": "base"}), quiet=True)
    cfg = Config().with_overrides(
        {
            **TINY,
            "run.runs_dir": str(tmp_path),
            "run.name": "ft",
            "model.weights": str(base.best_checkpoint),
            "model.finetune": "head",
            "optim.lr": 0.5,
        }
    )
    ft = train(cfg, quiet=True)
    before, after = _state(base.best_checkpoint), _state(ft.best_checkpoint)
    backbone = [k for k in before if k.startswith("features.")]
    assert backbone and all(
        torch.equal(before[k], after[k]) for k in backbone
    )  # frozen, batch-norm statistics included
    assert not torch.equal(before["fc.weight"], after["fc.weight"])  # the head trained


def test_full_finetune_uses_a_lower_backbone_rate(tmp_path):
    base = train(Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path), "run.name": "base"}), quiet=True)
    seen = {}

    def on_end(run):
        seen["ok"] = True

    cfg = Config().with_overrides(
        {
            **TINY,
            "run.runs_dir": str(tmp_path),
            "model.weights": str(base.best_checkpoint),
            "model.finetune": "full",
            "model.backbone_lr_scale": 0.1,
            "schedule.name": "constant",
            "optim.lr": 0.1,
        }
    )
    run = train(cfg, quiet=True, on_end=on_end)
    before, after = _state(base.best_checkpoint), _state(run.best_checkpoint)
    assert not torch.equal(
        before["features.stage0.0.weight"], after["features.stage0.0.weight"]
    )  # the backbone trains too
    assert seen["ok"]


def test_mixup_from_the_config_trains(tmp_path):
    run = train(Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path), "augment.mixup": 0.2}), quiet=True)
    assert run.summary["test"]["num_samples"] == 2000 and run.metrics[0]["train_loss"] > 0


def test_finetune_groups_carry_discriminative_scales():
    from cnnkit.models import create_model
    from cnnkit.training.optim import build_optimizer
    from cnnkit.training.trainer import _finetune_groups

    cfg = Config().with_overrides({"model.finetune": "full", "model.backbone_lr_scale": 0.1, "optim.lr": 0.2})
    model = create_model("simple_cnn", num_classes=10, in_chans=1, width=4)
    opt = build_optimizer(model, cfg.optim, _finetune_groups(model, cfg))
    rates = {round(g["lr"], 6) for g in opt.param_groups}
    assert rates == {0.2, 0.02}
    head = {id(p) for p in model.fc.parameters()}
    for g in opt.param_groups:
        assert all((id(p) in head) == (round(g["lr"], 6) == 0.2) for p in g["params"])


def test_augment_preset_is_expanded_into_the_resolved_config(tmp_path):
    from cnnkit.config import load_config

    cfg = Config().with_overrides(
        {**TINY, "run.runs_dir": str(tmp_path), "augment.preset": "strong", "augment.rotate": 5.0}
    )
    run = train(cfg, quiet=True)
    saved = load_config(run.dir / "config.yaml").augment
    assert saved.preset is None and saved.rotate == 5.0  # the key set explicitly wins over the preset's 15
    assert saved.erase == 0.25 and saved.shear == 10.0 and saved.hflip is False  # the preset for digits: no flips
