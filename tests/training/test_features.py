"""Training features end to end on tiny runs: EMA, early stopping, L1, plateau, TTA, compile fallback."""

import csv
import signal

import pytest
import torch

from cnnkit.config import Config
from cnnkit.training.trainer import train

TINY = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
    "train.epochs": 2,
    "train.batch_size": 25,
    "runtime.num_threads": 1,
}


def _cfg(tmp_path, **extra):
    return Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path), **extra})


def test_ema_is_evaluated_and_saved_alongside(tmp_path):
    run = train(_cfg(tmp_path, **{"train.ema_decay": 0.9, "optim.l1": 1e-4, "eval.tta": "flip"}), quiet=True)
    assert {"val_accuracy_ema", "val_loss_ema", "train_l1"} <= set(run.metrics[0])
    assert 0.0 <= run.summary["test_ema"]["accuracy"] <= 1.0 and run.summary["tta"] == "flip"
    best = torch.load(run.best_checkpoint, weights_only=True)
    assert best["ema_state_dict"].keys() == best["state_dict"].keys()
    assert not torch.equal(best["ema_state_dict"]["fc.weight"], best["state_dict"]["fc.weight"])
    header = next(csv.reader((run.dir / "metrics.csv").read_text().splitlines()))
    assert (
        header[:7] == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
        and "train_l1" in header
    )
    # the L1 term is part of the reported loss: coefficient x sum |w| of the conv/linear weights, about
    assert 0 < run.metrics[0]["train_l1"] < run.metrics[0]["train_loss"]


def test_early_stopping_stops_and_keeps_the_best(tmp_path):
    # lr 0: nothing changes, so val_loss never improves after epoch 1
    run = train(
        _cfg(
            tmp_path,
            **{
                "train.epochs": 6,
                "optim.lr": 0.0,
                "schedule.name": "constant",
                "train.monitor": "val_loss",
                "train.early_stopping": 2,
            },
        ),
        quiet=True,
    )
    assert run.summary["epochs_run"] == 3 and run.summary["stopped_early"] is True and run.summary["best_epoch"] == 1
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3]


def test_plateau_schedule_follows_the_monitored_metric_in_a_run(tmp_path):
    run = train(
        _cfg(
            tmp_path,
            **{
                "train.epochs": 4,
                "optim.lr": 5.0,
                "schedule.name": "plateau",
                "schedule.plateau_patience": 0,
                "schedule.plateau_factor": 0.5,
                "train.monitor": "val_loss",
            },
        ),
        quiet=True,
    )
    # ReduceLROnPlateau (mode min, relative threshold 1e-4, patience 0): halve after every epoch that did not improve
    expected, lr, best = [], 5.0, float("inf")  # a rate this high makes val_loss jump around
    for r in run.metrics:
        expected.append(lr)
        if r["val_loss"] < best * (1 - 1e-4):
            best = r["val_loss"]
        else:
            lr *= 0.5
    assert [r["lr"] for r in run.metrics] == pytest.approx(expected)
    assert expected[-1] < 5.0  # the rate was reduced at least once


def test_compile_failure_falls_back_with_a_message(tmp_path, monkeypatch, capsys):
    def broken_compile(model, *a, **k):
        def run(x):
            raise RuntimeError("backend not available on this machine")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    run = train(_cfg(tmp_path, **{"runtime.compile": True, "train.epochs": 1}), quiet=True)
    err = capsys.readouterr().err
    assert (
        "--compile: torch.compile failed (RuntimeError: backend not available on this machine); continuing without compilation"
        in err
    )
    assert run.summary["compiled"] is False and run.summary["test"]["accuracy"] >= 0
    assert all(
        not k.startswith(("module.", "_orig_mod."))
        for k in torch.load(run.best_checkpoint, weights_only=True)["state_dict"]
    )


def test_second_ctrl_c_exits_at_once_without_corrupting_files(tmp_path):
    import os

    def hook(epoch, step, loss):
        if (epoch, step) == (2, 1):
            os.kill(os.getpid(), signal.SIGINT)  # first: finish the step, then checkpoint
            os.kill(os.getpid(), signal.SIGINT)  # second: stop at once

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(tmp_path, **{"train.epochs": 3, "run.name": "r"}), quiet=True, on_step=hook)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    run_dir = tmp_path / "r"
    assert sorted(p.name for p in run_dir.iterdir() if p.suffix == ".ckpt") == ["best.ckpt", "last.ckpt"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert (
        torch.load(run_dir / "last.ckpt", weights_only=True)["train_state"]["epoch"] == 1
    )  # the epoch-1 checkpoint, intact


def test_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(_cfg(tmp_path, **{"run.tensorboard": True}), quiet=True)
    acc = EventAccumulator(str(run.dir / "tensorboard"))
    acc.Reload()
    assert {"train_loss", "val_accuracy", "lr"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("val_accuracy")] == [1, 2]
    assert acc.Scalars("val_accuracy")[-1].value == pytest.approx(run.metrics[-1]["val_accuracy"])


def test_bf16_autocast_on_the_cpu(tmp_path):
    fp32 = train(_cfg(tmp_path, **{"train.epochs": 1}), quiet=True)
    bf16 = train(_cfg(tmp_path, **{"train.epochs": 1, "runtime.precision": "bf16"}), quiet=True)
    assert bf16.metrics[0]["train_loss"] == pytest.approx(fp32.metrics[0]["train_loss"], abs=0.05)
    assert bf16.metrics[0]["train_loss"] != fp32.metrics[0]["train_loss"]  # it really ran in bf16


def test_param_groups_hook_gives_discriminative_rates(tmp_path):
    init = {}

    def groups(model):
        init.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return [{"params": model.features.parameters(), "lr_scale": 0.0, "name": "backbone"}]  # frozen by a zero rate

    run = train(_cfg(tmp_path, **{"train.epochs": 1}), quiet=True, param_groups=groups)
    final = torch.load(run.last_checkpoint, weights_only=True)["state_dict"]
    conv = [k for k in final if k.startswith("features") and k.endswith("weight")]
    assert conv and all(torch.equal(final[k], init[k]) for k in conv)
    assert not torch.equal(final["fc.weight"], init["fc.weight"])


def _one_step(grad_clip=None, loss_fn=None):
    from cnnkit.data.preprocess import Normalize
    from cnnkit.data.types import Split
    from cnnkit.models import create_model
    from cnnkit.training.loop import train_one_epoch

    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=3, in_chans=1, width=4, stages=1, depth=1, dropout=0.0)
    data = Split(torch.randint(0, 255, (8, 1, 8, 8), dtype=torch.uint8), torch.arange(8) % 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    train_one_epoch(
        model,
        data,
        optimizer=opt,
        scheduler=None,
        normalize=Normalize([0.5], [0.25]),
        batch_size=8,
        generator=torch.Generator().manual_seed(0),
        grad_clip=grad_clip,
        loss_fn=loss_fn,
    )
    return torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(), before)])


def test_gradient_clipping_bounds_the_update():
    free = _one_step().norm()
    clipped = _one_step(grad_clip=1e-3).norm()
    assert free > 0.5 * 1e-3 * 10  # unclipped, the step is far larger than the clipped one
    assert float(clipped) == pytest.approx(0.5 * 1e-3, rel=1e-3)  # SGD without momentum: |update| = lr * max_norm


def test_finite_loss_with_non_finite_gradient_stops():
    import torch.nn.functional as F

    from cnnkit.training.loop import NonFiniteLossError

    def loss_fn(logits, y):  # value finite, gradient NaN (d sqrt(x)/dx at 0 times 0)
        return F.cross_entropy(logits, y) + (logits[0, 0] * 0).abs().sqrt()

    with pytest.raises(NonFiniteLossError, match="at step 1 of this epoch"):
        _one_step(loss_fn=loss_fn)
