"""Resume that survives anything: crashes, signals, NaN, full disks, corrupt checkpoints."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.training.crash import Crash
from tests.training.crash import crash_at as _crash_at

from cnnkit.checkpoint import load_checkpoint
from cnnkit.cli import main
from cnnkit.config import Config
from cnnkit.errors import CheckpointError, CnnkitError
from cnnkit.training.interrupt import TrainingInterrupted
from cnnkit.training.loop import NonFiniteLossError
from cnnkit.training.trainer import train

# 100 training images, 4 steps per epoch, 3 epochs; step checkpoints at global steps 2, 6, 10
TINY = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
    "train.epochs": 3,
    "train.batch_size": 25,
    "train.checkpoint_every": 2,
    "runtime.num_threads": 1,  # tiny models: one thread is as fast, and far faster on a shared CPU
}


def _cfg(runs: Path, name: str, **extra) -> Config:
    return Config().with_overrides({**TINY, "run.runs_dir": str(runs), "run.name": name, **extra})


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_run(a, b) -> None:
    assert _strip(a.metrics) == _strip(b.metrics)
    assert a.summary["test"] == b.summary["test"]
    for name in ("last.ckpt", "best.ckpt"):
        wa, wb = _weights(a.dir / name), _weights(b.dir / name)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return train(_cfg(tmp_path_factory.mktemp("ref"), "ref"), quiet=True)


@pytest.mark.parametrize(
    "epoch, step, saved",
    [
        (1, 3, (0, 2)),  # mid-epoch, resumes from the step checkpoint at step 2
        (2, 4, (1, 2)),  # last step of an epoch, before its end-of-epoch checkpoint
        (3, 1, (2, 0)),  # first step of an epoch: resumes from the end of epoch 2
    ],
)
def test_interrupted_run_resumes_to_the_same_metrics_and_weights(reference, tmp_path, epoch, step, saved):
    with pytest.raises(Crash):
        train(_cfg(tmp_path, "r"), quiet=True, on_step=_crash_at(epoch, step))
    state = load_checkpoint(tmp_path / "r" / "last.ckpt")["train_state"]
    assert (state["epoch"], state["epoch_state"]["step"] if state["epoch_state"] else 0) == saved
    assert not (tmp_path / "r" / "summary.json").exists()
    resumed = train(resume=tmp_path / "r", quiet=True)
    assert resumed.dir == tmp_path / "r"
    _assert_same_run(reference, resumed)
    rows = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4  # header + 3 epochs, no duplicated epoch


def test_resume_state_is_weights_only_with_rng_as_tensors(reference):
    state = torch.load(reference.dir / "last.ckpt", weights_only=True)["train_state"]
    assert state["finished"] is True and state["epoch"] == 3
    assert isinstance(state["rng"]["python"]["state"], torch.Tensor) and state["rng"]["python"]["state"].numel() == 625
    assert isinstance(state["rng"]["numpy"]["keys"], torch.Tensor) and state["rng"]["numpy"]["keys"].numel() == 624
    assert state["rng"]["generator"].dtype == torch.uint8
    assert {"optimizer", "scheduler", "scaler", "early_stopping", "rows"} <= set(state)
    assert len(state["optimizer"]["state"]) > 0  # momentum buffers travel


def test_sigint_checkpoints_the_step_and_resumes(reference, tmp_path, capsys):
    def hook(e, s, loss):
        if (e, s) == (2, 1):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        train(_cfg(tmp_path, "r"), on_step=hook, interactive=False)
    assert info.value.exit_code == 130
    assert f"resume with: cnnkit train --resume {tmp_path / 'r'}" in str(
        info.value
    )  # said once, by the exception (the CLI prints it)
    assert "resume with" not in capsys.readouterr().out.lower()
    state = load_checkpoint(tmp_path / "r" / "last.ckpt")["train_state"]
    assert state["epoch"] == 1 and state["epoch_state"]["step"] == 1  # the current step finished and was saved
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    _assert_same_run(reference, train(resume=tmp_path / "r", quiet=True))


def test_cli_resume_and_exit_code_on_sigterm(reference, tmp_path, capsys, monkeypatch):
    from cnnkit.training import trainer

    real_train = trainer.train

    def train_with_sigterm(*args, **kwargs):
        return real_train(
            *args,
            on_step=lambda e, s, loss: os.kill(os.getpid(), signal.SIGTERM) if (e, s) == (1, 3) else None,
            **kwargs,
        )

    args = [
        "train",
        "--subset",
        "10",
        "--epochs",
        "3",
        "--batch-size",
        "25",
        "--checkpoint-every",
        "2",
        "--threads",
        "1",
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 2, depth: 1}",
    ]
    monkeypatch.setattr(trainer, "train", train_with_sigterm)
    assert main([*args, "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]) == 143
    monkeypatch.setattr(trainer, "train", real_train)
    assert "resume with: cnnkit train --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--lr", "0.1"]) == 2
    assert "--resume continues the run exactly as it was configured; drop optim.lr" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["test"] == reference.summary["test"]
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    assert "this run already finished" in capsys.readouterr().err


def test_truncated_checkpoint_given_to_resume_names_the_file(tmp_path, capsys):
    with pytest.raises(Crash):
        train(_cfg(tmp_path, "r"), quiet=True, on_step=_crash_at(2, 1))
    last = tmp_path / "r" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"{last}: not a readable cnnkit checkpoint" in err and "truncated or corrupt" in err
    with pytest.raises(CheckpointError, match="no config.yaml here"):
        train(resume=tmp_path)


def test_failed_save_is_a_clear_error_and_the_previous_checkpoint_survives(reference, tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def disk_fills_up(obj, f, *a, **k):
        calls.append(os.path.basename(f.name).split(".")[1])  # the temporary file .last.ckpt.XXXX.tmp
        if (
            calls.count("last") == 3 and calls[-1] == "last"
        ):  # epoch 1 end; step checkpoint at step 6; epoch 2 end: fails
            f.write(b"half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", disk_fills_up)
    with pytest.raises(CnnkitError) as info:
        train(_cfg(tmp_path, "r", **{"train.checkpoint_every": 6}), quiet=True)
    monkeypatch.setattr(torch, "save", real_save)
    msg = str(info.value)
    assert (
        "last.ckpt: could not be written (No space left on device)" in msg
        and f"cnnkit train --resume {tmp_path / 'r'}" in msg
    )
    state = load_checkpoint(tmp_path / "r" / "last.ckpt")["train_state"]
    assert state["epoch"] == 1 and state["epoch_state"]["step"] == 2  # the step-6 checkpoint is intact
    assert not [p for p in os.listdir(tmp_path / "r") if p.endswith(".tmp")]
    resumed = train(resume=tmp_path / "r", quiet=True)
    _assert_same_run(reference, resumed)


def _nan_at(call: int):
    calls = []

    def loss_fn(logits, y):
        calls.append(1)
        loss = F.cross_entropy(logits, y, label_smoothing=0.1)
        return loss * float("nan") if len(calls) == call else loss

    return loss_fn


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError) as info:
        train(_cfg(tmp_path, "r"), quiet=True, loss_fn=_nan_at(6))
    msg = str(info.value)
    assert "became nan at step 6 (epoch 2, step 2 of 4)" in msg
    assert "the last finite loss was" in msg and "learning rate too high" in msg and "--on-nan skip" in msg
    assert "last.ckpt (epoch 1)" in msg
    ckpt = load_checkpoint(tmp_path / "r" / "last.ckpt")
    assert ckpt["train_state"]["epoch"] == 1 and all(
        torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()
    )


def test_on_nan_skip_counts_the_skipped_steps(tmp_path):
    run = train(_cfg(tmp_path, "r", **{"train.on_nan": "skip"}), quiet=True, loss_fn=_nan_at(6))
    assert run.summary["nonfinite_steps_skipped"] == 1
    summary = json.loads((run.dir / "summary.json").read_text())
    assert summary["nonfinite_steps_skipped"] == 1 and summary["test"]["accuracy"] > 0


def test_sigint_in_a_subprocess_exits_130_with_a_loadable_checkpoint(tmp_path):
    """A real Ctrl-C to a real process: the step finishes, last.ckpt is written, exit 130."""
    cmd = [
        sys.executable,
        "-m",
        "cnnkit",
        "train",
        "--subset",
        "100",
        "--epochs",
        "3",
        "--batch-size",
        "10",
        "--plain",
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 1, depth: 1}",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "r",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    for line in proc.stdout:
        if line.startswith("cnnkit: training"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume with: cnnkit train --resume" in err and "resume with" not in out.lower()  # once, on stderr
    state = load_checkpoint(tmp_path / "r" / "last.ckpt")["train_state"]
    assert state["epoch_state"] is None or state["epoch_state"]["step"] >= 1
    assert not [p for p in os.listdir(tmp_path / "r") if p.endswith(".tmp")]


def test_unwritable_runs_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(
        CnnkitError, match=r"a-file/runs: cannot create the run folder there .*use --runs-dir with a writable folder"
    ):
        train(Config().with_overrides({**TINY, "run.runs_dir": str(blocker / "runs")}), quiet=True)


def test_a_run_written_before_the_config_split_resumes_to_the_same_metrics(tmp_path):
    """tests/fixtures/run_before_split: a tiny run crashed at epoch 2, step 1 by the code before `train` was split
    into train / eval / runtime (its config.yaml and last.ckpt say train.device, train.eval_batch_size...)."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "run_before_split", old)
    assert "device: cpu" in (old / "config.yaml").read_text().split("train:")[1]  # really the older layout
    resumed = train(resume=old, quiet=True)
    assert resumed.config.runtime.device == "cpu" and resumed.config.eval.batch_size == 77
    fresh = train(
        Config().with_overrides(
            {
                "data.subset_per_class": 5,
                "model.name": "simple_cnn",
                "model.kwargs": {"width": 4, "stages": 1, "depth": 1},
                "train.epochs": 2,
                "train.batch_size": 25,
                "train.checkpoint_every": 1,
                "runtime.num_threads": 1,
                "runtime.device": "cpu",
                "eval.batch_size": 77,
                "run.runs_dir": str(tmp_path),
                "run.name": "fresh",
            }
        ),
        quiet=True,
    )
    assert len(resumed.metrics) == 2 and _strip(resumed.metrics) == _strip(fresh.metrics)
    wa, wb = _weights(old / "last.ckpt"), _weights(fresh.dir / "last.ckpt")
    assert all(torch.equal(wa[k], wb[k]) for k in wb)
