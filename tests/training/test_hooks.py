"""training/hooks.py: the documented call order of every hook on a tiny run, and train()'s keywords filling Hooks."""

import csv

import pytest
import torch

from cnnkit.config import Config
from cnnkit.training.hooks import Hooks
from cnnkit.training.trainer import train

TINY = {
    "data.subset_per_class": 3,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 1, "depth": 1},
    "train.epochs": 2,
    "train.batch_size": 10,
    "runtime.num_threads": 1,
    "train.recipe": "none",
    "run.html_report": False,
}


def test_hooks_are_called_in_the_documented_order(tmp_path):
    calls = []

    def param_groups(model):
        calls.append("param_groups")
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]

    def perturb_batch(model, normalize, x01, y, generator, epoch):
        calls.append(f"perturb_batch:{epoch}")
        assert (
            x01.dtype == torch.float32 and float(x01.min()) >= 0.0 and float(x01.max()) <= 1.0 and y.dtype == torch.long
        )
        assert isinstance(generator, torch.Generator) and normalize(x01).shape == x01.shape
        return x01

    def batch_transform(x, y, generator):
        calls.append("batch_transform")
        return x, y

    def loss_fn(logits, targets):
        calls.append("loss_fn")
        return torch.nn.functional.cross_entropy(logits, targets)

    hooks = Hooks(
        param_groups=param_groups,
        perturb_batch=perturb_batch,
        batch_transform=batch_transform,
        loss_fn=loss_fn,
        on_end=lambda run: calls.append(f"on_end:{len(run.metrics)}"),
        on_epoch_end=lambda epoch, row: calls.append(f"on_epoch_end:{epoch}:{row['epoch']}"),
    )
    cfg = Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path)})
    run = train(
        cfg, quiet=True, hooks=hooks, on_step=lambda epoch, step, loss: calls.append(f"on_step:{epoch}.{step}")
    )  # a keyword fills its entry
    steps = run.summary["steps"] // 2
    assert steps == 3 and run.summary["epochs_run"] == 2
    expected = ["param_groups"]
    for epoch in (1, 2):
        for step in range(1, steps + 1):
            expected += [f"perturb_batch:{epoch}", "batch_transform", "loss_fn", f"on_step:{epoch}.{step}"]
        expected.append(f"on_epoch_end:{epoch}:{epoch}")
    assert calls == [*expected, "on_end:2"]


def test_perturb_batch_changes_what_is_learned(tmp_path):
    """The hook's output is what the model trains on: black images learn nothing beyond the biases."""
    cfg = Config().with_overrides({**TINY, "train.epochs": 1, "run.runs_dir": str(tmp_path)})
    plain = train(cfg.with_overrides({"run.name": "plain"}), quiet=True)
    black = train(
        cfg.with_overrides({"run.name": "black"}),
        quiet=True,
        perturb_batch=lambda m, n, x01, y, g, e: torch.zeros_like(x01),
    )
    assert black.metrics[0]["train_loss"] != plain.metrics[0]["train_loss"]
    assert black.metrics[0]["train_accuracy"] <= 0.2  # 10 balanced classes, one input: at most a class or two right


class Stop(Exception):
    pass


def test_an_exception_from_on_epoch_end_ends_the_run_with_its_folder_complete_so_far(tmp_path):
    rows = []

    def stop_after_first(epoch, row):
        rows.append(row)
        raise Stop(f"stopped after epoch {epoch}")

    cfg = Config().with_overrides({**TINY, "train.epochs": 3, "run.runs_dir": str(tmp_path), "run.name": "r"})
    with pytest.raises(Stop, match="stopped after epoch 1"):
        train(cfg, quiet=True, on_epoch_end=stop_after_first)
    run = tmp_path / "r"
    with (run / "metrics.csv").open() as f:
        written = list(csv.DictReader(f))
    assert [r["epoch"] for r in written] == ["1"] and len(rows) == 1  # epoch 2 never started
    assert float(written[0]["val_accuracy"]) == pytest.approx(rows[0]["val_accuracy"])
    assert (run / "best.ckpt").is_file() and (run / "last.ckpt").is_file()
