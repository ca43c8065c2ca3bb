"""`TrainState`: the checkpoint's `train_state`, its layout defined here and versioned.

last.ckpt = the self-describing model checkpoint (checkpoint.py) + `train_state`:

    version         TRAIN_STATE_VERSION (files written before it existed have no key: version 1, same layout)
    epoch           epochs completed
    epoch_state     the interrupted epoch's order, step and running sums (loop.EpochState), or None
    epoch_sums      with several processes, every rank's running sums (distributed.gather_epoch_sums), or None
    epoch_lr        the learning rate at the interrupted epoch's start (its metrics row), or None
    optimizer, scheduler, scaler, ema, lookahead, early_stopping, budget   their state_dict()s (None: not used)
    rng             every RNG state (training/rng.py) including the run's data generator
    rows            the metric rows so far
    skipped_steps   non-finite steps skipped (train.on_nan: skip)
    images_seen     training images seen in completed epochs (every process; absent before: 0)
    train_seconds   training time so far
    dataset         the dataset's fingerprint (training/resume_check.py)
    finished        True once every result file is written (training/results.py sets it)

`TrainState` holds the run's stateful parts and where the run stands; `state_dict()` writes
the layout above and `load_state_dict()` reads it (and version 1) back into the same parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cnnkit.checkpoint import unwrap
from cnnkit.errors import CheckpointError
from cnnkit.training import distributed
from cnnkit.training.epoch_state import EpochState
from cnnkit.training.rng import rng_state, set_rng_state

TRAIN_STATE_VERSION = 2  # 1: the same layout without the "version" key


@dataclass
class TrainState:
    """The parts whose state a resumed run needs, and where the run stands."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    stopper: Any  # EarlyStopping
    generator: torch.Generator
    ema: Any = None
    lookahead: Any = None
    budget: Any = None
    rows: list[dict] = field(default_factory=list)
    epoch: int = 0  # epochs completed
    epoch_state: EpochState | None = None  # the epoch in progress (None between epochs)
    epoch_lr: float | None = None  # the learning rate at that epoch's start
    skipped_steps: int = 0
    images_seen: int = 0
    train_seconds: float = 0.0
    dataset: dict | None = None  # the dataset's fingerprint

    def state_dict(self, epoch_sums: torch.Tensor | None = None) -> dict:
        es = self.epoch_state
        return {
            "version": TRAIN_STATE_VERSION,
            "epoch": self.epoch,
            "epoch_state": es.state_dict() if es is not None else None,
            "epoch_lr": self.epoch_lr,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "lookahead": self.lookahead.state_dict() if self.lookahead is not None else None,
            "early_stopping": self.stopper.state_dict(),
            "rows": [dict(r) for r in self.rows],
            "budget": self.budget.state_dict() if self.budget is not None else None,
            "rng": rng_state(self.generator),
            "skipped_steps": self.skipped_steps,
            "images_seen": self.images_seen,
            "train_seconds": self.train_seconds,
            "finished": False,
            "dataset": self.dataset,
            "epoch_sums": epoch_sums,
        }

    def load_state_dict(self, st: dict, *, rank: int = 0, world_size: int = 1) -> None:
        """Restore the parts and the position from `st` (version 1 or 2). The RNG states are set last."""
        version = st.get("version", 1)
        if version > TRAIN_STATE_VERSION:
            raise CheckpointError(
                f"training state version {version} is newer than this cnnkit reads ({TRAIN_STATE_VERSION}); upgrade cnnkit"
            )
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        if st["scaler"]:
            self.scaler.load_state_dict(st["scaler"])
        if self.ema is not None and st["ema"] is not None:
            self.ema.load_state_dict(st["ema"])
        if self.lookahead is not None:
            self.lookahead.load_state_dict(st["lookahead"])
        self.stopper.load_state_dict(st["early_stopping"])
        if self.budget is not None and st.get("budget"):
            self.budget.load_state_dict(st["budget"])
            if self.lookahead is not None:
                self.lookahead.total = self.budget.total
        self.epoch_state = None
        if st["epoch_state"] is not None:  # with several processes, each resumes its own running sums
            self.epoch_state = EpochState.from_state_dict(
                distributed.epoch_state_for_rank(st["epoch_state"], st.get("epoch_sums"), rank, world_size)
            )
        set_rng_state(st["rng"], self.generator)
        self.rows = list(st["rows"])
        self.epoch = st["epoch"]
        self.epoch_lr = st.get("epoch_lr")
        self.skipped_steps = st["skipped_steps"]
        self.images_seen = st.get("images_seen", 0)
        self.train_seconds = st["train_seconds"]


def restore(state: TrainState, model: torch.nn.Module, ckpt: dict, path: Path, *, rank: int, world_size: int) -> None:
    """Load last.ckpt's weights into `model` and its training state into `state`; a state that does
    not fit this run's parts is a CheckpointError naming the file."""
    try:
        unwrap(model).load_state_dict(ckpt["state_dict"])
        state.load_state_dict(ckpt["train_state"], rank=rank, world_size=world_size)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"{path}: its training state does not fit this run's config ({type(e).__name__}: {str(e)[:200]})"
        ) from e
