"""A full disk or a read-only run folder while training writes its files: a clear error naming the
file and what to do, nothing half-written, the checkpoints intact, and `--resume` finishes the run."""

import errno
import io
import json
import os
from pathlib import Path

import pytest
import torch

from cnnkit import rundir
from cnnkit.checkpoint import CheckpointWriteError, load_checkpoint
from cnnkit.cli import main
from cnnkit.config import Config
from cnnkit.training.trainer import train

# 50 training images, 2 steps per epoch, 2 epochs; no report.html (it has its own test)
TINY = {
    "data.subset_per_class": 5,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 1, "depth": 1},
    "train.epochs": 2,
    "train.batch_size": 25,
    "runtime.num_threads": 1,
    "run.html_report": False,
}
END_FILES = [
    "test_metrics.json",
    "summary.json",
    "report.md",
    "plots/learning_curves.png",
    "plots/confusion_matrix.png",
]


def _cfg(runs: Path, **extra) -> Config:
    return Config().with_overrides({**TINY, "run.runs_dir": str(runs), "run.name": "r", **extra})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return train(_cfg(tmp_path_factory.mktemp("ref")), quiet=True)


class _FillingUp:
    """An open file whose first write puts a few bytes on disk and then fails, like a disk filling up."""

    def __init__(self, f, err: int):
        self._f, self._err = f, err

    def write(self, data) -> int:
        self._f.write(bytes(data)[:10])
        raise OSError(self._err, os.strerror(self._err))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def fail_writing(monkeypatch, name: str, err: int = errno.ENOSPC, after: int = 0) -> list:
    """Make every atomic write of the run file `name` (e.g. "plots/x.png") fail mid-write, after the first `after`."""
    real_open, seen = open, []
    folder, base = os.path.split(name)

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        p = Path(path)
        if "w" in mode and p.name.startswith(f".{base}.") and p.parent.name == (folder or p.parent.name):
            seen.append(p)
            if len(seen) > after:
                return _FillingUp(f, err)
        return f

    monkeypatch.setattr(
        rundir, "open", fake_open, raising=False
    )  # atomic_write's open(): every run file goes through it
    return seen


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _no_temporary_files(run: Path) -> bool:
    return not [p for p in (*run.iterdir(), *(run / "plots").iterdir()) if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", END_FILES)
def test_full_disk_at_the_end_keeps_the_results_and_resume_writes_the_file(reference, tmp_path, monkeypatch, name):
    fail_writing(monkeypatch, name)
    out = io.StringIO()
    with pytest.raises(CheckpointWriteError) as info:
        train(_cfg(tmp_path), stream=out, interactive=False)
    monkeypatch.undo()
    run = tmp_path / "r"
    msg = str(info.value)
    test_acc = reference.summary["test"]["accuracy"]
    assert msg.startswith(
        f"{run / name}: could not be written (No space left on device). Training finished: test accuracy {test_acc:.2%}"
    )
    assert "last.ckpt and best.ckpt are intact. Free some disk space" in msg
    assert msg.endswith(
        f"then write the missing files with: cnnkit train --resume {run} (it repeats only the final evaluation; or copy the folder to another disk and resume the copy)"
    )
    assert "\n" not in msg
    assert f"test accuracy {test_acc:.2%} (best epoch" in out.getvalue()  # the final line is printed all the same
    assert not (run / name).exists() and _no_temporary_files(run)  # nothing half-written
    others = [f for f in END_FILES if f != name]
    assert all((run / f).is_file() for f in others)  # the other files were still written
    last = load_checkpoint(run / "last.ckpt")
    assert last["train_state"]["epoch"] == 2 and not last["train_state"]["finished"]
    ref_best = _weights(reference.dir / "best.ckpt")
    assert all(torch.equal(v, ref_best[k]) for k, v in _weights(run / "best.ckpt").items())

    resumed = train(resume=run, quiet=True)  # the disk has room again
    assert (run / name).is_file() and resumed.summary["test"] == reference.summary["test"]
    assert json.loads((run / "summary.json").read_text())["epochs_run"] == 2
    assert load_checkpoint(run / "last.ckpt")["train_state"]["finished"]


@pytest.mark.parametrize("name", ["metrics.csv", "best.ckpt", "last.ckpt"])
def test_full_disk_in_the_last_epoch_keeps_the_previous_files_and_resume_repeats_it(
    reference, tmp_path, monkeypatch, name
):
    assert reference.summary["best_epoch"] == 2  # so epoch 2 writes best.ckpt too
    fail_writing(monkeypatch, name, after=1)  # epoch 1's file is written; epoch 2's fails
    with pytest.raises(CheckpointWriteError) as info:
        train(_cfg(tmp_path), quiet=True)
    monkeypatch.undo()
    run = tmp_path / "r"
    msg = str(info.value)
    assert msg.startswith(
        f"{run / name}: could not be written (No space left on device). Files already in {run} are unchanged"
    )
    assert f"free some disk space, then continue with: cnnkit train --resume {run} (or copy the folder" in msg
    assert _no_temporary_files(run) and not (run / "summary.json").exists()
    assert load_checkpoint(run / "last.ckpt")["train_state"]["epoch"] == 1  # the epoch-1 checkpoint is intact
    assert len((run / "metrics.csv").read_text().splitlines()) == 2 + (name != "metrics.csv")  # header, epoch 1 (and 2)

    resumed = train(resume=run, quiet=True)  # repeats epoch 2: the same numbers, best.ckpt written again
    assert resumed.summary["test"] == reference.summary["test"]
    assert resumed.summary["best_epoch"] == reference.summary["best_epoch"]
    for f in ("best.ckpt", "last.ckpt"):
        ref = _weights(reference.dir / f)
        assert all(torch.equal(v, ref[k]) for k, v in _weights(run / f).items()), f
    assert len((run / "metrics.csv").read_text().splitlines()) == 3


def test_read_only_file_system_says_make_the_folder_writable(tmp_path, monkeypatch):
    fail_writing(monkeypatch, "summary.json", err=errno.EROFS)
    with pytest.raises(
        CheckpointWriteError,
        match=r"summary.json: could not be written \(Read-only file system\)\. .* Make the folder writable, then write the missing",
    ):
        train(_cfg(tmp_path), quiet=True)


def test_report_html_and_marking_last_finished_are_warnings(tmp_path, monkeypatch, capsys):
    fail_writing(monkeypatch, "report.html")
    run = train(_cfg(tmp_path, **{"run.html_report": True}), quiet=True)
    err = capsys.readouterr().err
    assert (
        f"cnnkit: warning: report.html could not be written (OSError: [Errno 28] No space left on device); rebuild it with: cnnkit report {run.dir}"
        in err
    )
    assert not (run.dir / "report.html").exists() and _no_temporary_files(run.dir)
    assert (run.dir / "summary.json").is_file() and load_checkpoint(run.dir / "last.ckpt")["train_state"]["finished"]

    monkeypatch.undo()
    fail_writing(monkeypatch, "last.ckpt", after=2)  # epochs 1 and 2 are saved; marking the run finished fails
    run = train(_cfg(tmp_path / "b"), quiet=True)
    assert (
        f"warning: {run.dir / 'last.ckpt'} could not be marked finished (No space left on device); the run is complete"
        in capsys.readouterr().err
    )
    assert json.loads((run.dir / "summary.json").read_text())["epochs_run"] == 2
    assert not load_checkpoint(run.dir / "last.ckpt")["train_state"]["finished"]


def test_cli_reports_a_full_disk_in_one_line_with_exit_code_2(tmp_path, monkeypatch, capsys):
    fail_writing(monkeypatch, "summary.json")
    args = [
        "train",
        "--subset",
        "5",
        "--epochs",
        "1",
        "--batch-size",
        "25",
        "--threads",
        "1",
        "--plain",
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 1, depth: 1}",
        "--set",
        "run.html_report=false",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "r",
    ]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "test accuracy" in out.splitlines()[-1]  # the final metrics line
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        f"cnnkit train: error: {tmp_path / 'r' / 'summary.json'}: could not be written (No space left on device)"
    )


def test_full_disk_before_training_says_start_again_elsewhere(tmp_path, monkeypatch):
    fail_writing(monkeypatch, "environment.json")
    steps = []
    with pytest.raises(CheckpointWriteError) as info:
        train(_cfg(tmp_path), quiet=True, on_step=lambda *a: steps.append(a))
    assert str(info.value) == (
        f"{tmp_path / 'r' / 'environment.json'}: could not be written (No space left on device). "
        "Nothing was trained yet; free some disk space or use --runs-dir with another folder, and start again"
    )
    assert steps == []


needs_non_root = pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")


@needs_non_root
def test_run_folder_made_read_only_during_training(reference, tmp_path):
    run = tmp_path / "r"

    def lock(epoch, step, loss):
        if (epoch, step) == (2, 2):
            run.chmod(0o555)

    try:
        with pytest.raises(
            CheckpointWriteError,
            match=r"metrics.csv: could not be written \(Permission denied\)\. .*make the folder writable",
        ):
            train(_cfg(tmp_path), quiet=True, on_step=lock)
    finally:
        run.chmod(0o755)
    assert load_checkpoint(run / "last.ckpt")["train_state"]["epoch"] == 1
    assert train(resume=run, quiet=True).summary["test"] == reference.summary["test"]


@needs_non_root
def test_read_only_runs_dir_fails_before_training(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o555)
    with pytest.raises(
        rundir.RunDirError,
        match=r"runs: cannot create the run folder there \(Permission denied\); use --runs-dir with a writable folder",
    ):
        train(_cfg(runs), quiet=True, on_step=lambda *a: pytest.fail("trained"))
