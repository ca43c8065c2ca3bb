"""training/detect.py: a detection run stopped by a signal ends with last.ckpt at the step in progress and
TrainingInterrupted carrying the exit code and the resume command."""

import os
import signal

import pytest
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.tasks.detect.train import load_detector_checkpoint
from cnnkit.training.detect import train
from cnnkit.training.interrupt import TrainingInterrupted


def test_sigterm_saves_the_step_and_raises_with_exit_code_143(tmp_path, monkeypatch):
    import cnnkit.tasks.detect.train as loop

    real = loop._train_epoch

    def first_step_then_sigterm(*args, **kwargs):  # the signal arrives during the first step
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "_train_epoch", first_step_then_sigterm)
    with pytest.raises(TrainingInterrupted, match="continue with cnnkit train --resume") as e:
        train(tiny_cfg(tmp_path, batch_size=2), resume=None, quiet=True, data=tiny_data())
    assert e.value.exit_code == 143
    state = load_detector_checkpoint(tmp_path / "det" / "last.ckpt")["train_state"]
    assert (state["epoch"], state["step"]) == (0, 1) and not (tmp_path / "det" / "summary.json").exists()
