"""The engine's door for data.task gan: a DCGAN has two networks and two optimisers, which the single-loss
step does not carry, so its epoch loop lives in cnnkit.tasks.gan.run; this module gives it the engine's
interrupt handling, thread count and resume check (a changed config or dataset is refused), and returns the
engine's Run."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import torch

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.tasks.gan.run import train_gan
from cnnkit.training.finish import Run
from cnnkit.training.interrupt import GracefulInterrupt, TrainingInterrupted
from cnnkit.training.resume_check import check


def train(cfg: Config, *, resume: Path | None, quiet: bool = False, stream: TextIO | None = None) -> Run:
    """Train a DCGAN; raises TrainingInterrupted (130 / 143) after Ctrl-C / SIGTERM with last.ckpt written."""
    if cfg.runtime.devices > 1:
        key = "runtime.devices (--devices)"
        raise ConfigError(f"{key}: a GAN run (data.task gan) trains on one device; drop {key}")
    prev_threads = torch.get_num_threads()
    if cfg.runtime.num_threads:
        torch.set_num_threads(cfg.runtime.num_threads)
    try:
        with GracefulInterrupt() as stop:
            out = train_gan(cfg, stop=stop, resume=resume, quiet=quiet, stream=stream, check=check)
    finally:
        torch.set_num_threads(prev_threads)
    if out.interrupted:
        raise TrainingInterrupted(
            f"stopped; last.ckpt saved: continue with cnnkit train --resume {out.dir}", stop.exit_code
        )
    return Run(out.dir, out.config, out.metrics, out.summary, out.generator)
