"""Early stopping on a monitored metric, and the best-so-far record that picks best.ckpt."""

from __future__ import annotations

from typing import Literal

from cnnkit.errors import ConfigError

MONITORS: dict[str, Literal["min", "max"]] = {
    "val_accuracy": "max",
    "val_loss": "min",
    "train_loss": "min",
    "train_accuracy": "max",
}


class EarlyStopping:
    """Tracks the best value of `monitor`; `should_stop` after `patience` epochs without improvement.

    patience 0 never stops (the record still picks the best checkpoint). An improvement
    must beat the best by more than `min_delta`; on an exact tie, a lower `tiebreak`
    (e.g. val_loss when monitoring accuracy) counts as an improvement.
    """

    def __init__(self, monitor: str = "val_accuracy", patience: int = 0, min_delta: float = 0.0):
        if patience < 0 or min_delta < 0:
            raise ConfigError(f"train.early_stopping and train.min_delta must be >= 0 (got {patience}, {min_delta})")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = MONITORS[monitor]
        self.best: float | None = None
        self.best_tiebreak: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0

    def is_improvement(self, value: float, tiebreak: float | None = None) -> bool:
        """Pure decision: is `value` better than the best so far?"""
        if value != value:  # NaN never improves
            return False
        if self.best is None:
            return True
        gain = value - self.best if self.mode == "max" else self.best - value
        if gain > self.min_delta:
            return True
        return gain == 0 and tiebreak is not None and self.best_tiebreak is not None and tiebreak < self.best_tiebreak

    def update(self, value: float, epoch: int, tiebreak: float | None = None) -> bool:
        """Record an epoch's value; returns True when it is the new best."""
        if self.is_improvement(value, tiebreak):
            self.best, self.best_tiebreak, self.best_epoch, self.bad_epochs = value, tiebreak, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_tiebreak": self.best_tiebreak,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_tiebreak = state["best"], state["best_tiebreak"]
        self.best_epoch, self.bad_epochs = state["best_epoch"], state["bad_epochs"]
