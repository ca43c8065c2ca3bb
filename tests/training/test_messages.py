"""What `cnnkit train` tells the user: interrupt and resume lines once each, a resume banner that
reads as a sentence, and --resume of a finished run refused with a non-zero exit."""

import os
import signal

import pytest
from tests.conftest import make_image_folder, tiny_train_args

from cnnkit.cli import main

TINY = [
    "--image-size",
    "12",
    "--model",
    "simple_cnn",
    "--set",
    "model.kwargs={width: 4, stages: 1, depth: 1}",
    "--batch-size",
    "4",
    "--epochs",
    "2",
]


def test_interrupt_resume_and_finished_messages(tmp_path, monkeypatch, capsys):
    import cnnkit.training.trainer as trainer

    real = trainer.train_one_epoch
    calls = []

    def interrupted_once(*a, **k):  # SIGTERM in the first epoch: the step finishes, a checkpoint is saved
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(trainer, "train_one_epoch", interrupted_once)
    run = tmp_path / "runs" / "r"
    data = make_image_folder(tmp_path / "pets", per_class=10)
    assert (
        main(["train", "--data", str(data), *TINY, "--runs-dir", str(tmp_path / "runs"), "--name", "r", "--plain"])
        == 143
    )
    cap = capsys.readouterr()
    both = cap.out + cap.err
    assert both.count("interrupted at epoch 1, step 1") == 1
    assert both.count(f"cnnkit train --resume {run}") == 1
    assert both.count("SIGTERM received") == 1

    assert main(["train", "--resume", str(run), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "cnnkit: resuming simple_cnn on pets (" in out and "on cpu from epoch 1, step 2; run folder" in out

    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "this run already finished; start a new one with: cnnkit train --config" in err


def test_quiet_prints_only_the_final_line(tmp_path, capsys):
    """`--quiet`: as its help says, the final line (the result and the run folder) and nothing else on stdout."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--quiet print only the final line (the result and the run folder)" in " ".join(
        capsys.readouterr().out.split()
    )
    data = make_image_folder(tmp_path / "pets", per_class=10)
    assert main(tiny_train_args(data, tmp_path / "runs", "--name", "q", epochs=1)) == 0  # the args say --quiet
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.endswith(f"s of training. Run folder: {tmp_path / 'runs' / 'q'}\n")
    assert out.startswith("val accuracy ") and "chosen on this same split (optimistic" in out  # no test/: val
