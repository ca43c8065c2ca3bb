"""`cnnkit train --task detect`: tasks/detect/train.py's loop under Ctrl-C / SIGTERM handling (as training/gan.py
does for GANs): the step in progress finishes, last.ckpt is written, TrainingInterrupted (130 / 143) follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnkit.config import Config
from cnnkit.training.interrupt import GracefulInterrupt, TrainingInterrupted


def train(cfg: Config | None, *, resume: str | Path | None, quiet: bool = False, data: Any = None) -> Path:
    """The run folder of a finished run; TrainingInterrupted once a stopped one has saved last.ckpt."""
    from cnnkit.tasks.detect.train import train_detection

    with GracefulInterrupt() as stop:
        run = train_detection(cfg, data=data, resume=resume, quiet=quiet, stop=stop)
    if stop.requested:
        raise TrainingInterrupted(
            f"stopped; last.ckpt saved: continue with cnnkit train --resume {run}", stop.exit_code
        )
    return run
