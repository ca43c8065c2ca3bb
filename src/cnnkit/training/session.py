"""`Session`: what the epochs of one run share, and the two things they do to it from anywhere:
save the position (`save_last`) and re-plan a time budget (`replan`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnkit.data.types import Split
from cnnkit.training import distributed
from cnnkit.training.hooks import Hooks
from cnnkit.training.run_files import nan_message, save
from cnnkit.training.setup import RunParts
from cnnkit.training.step import NonFiniteLossError


@dataclass
class Session:
    """A run's parts and hooks, the progress display, the interrupt flag, the training clock, what the
    model steps on (the cached head, or the model itself) and the last saved position (for the NaN message)."""

    parts: RunParts
    hooks: Hooks
    progress: Any
    interrupt: Any
    clock: Callable[[], float]  # seconds, monotonic (time.perf_counter; a test may give a fake one)
    t_train: float  # the clock's reading when training time was zero
    step_model: torch.nn.Module
    train_split: Split
    val_model: torch.nn.Module
    val_split: Split
    feed: Any
    saved: dict = field(default_factory=dict)
    skipped_files: int = 0
    stopped_early: bool = False

    def elapsed(self) -> float:
        """Seconds of training so far (resumed runs include the time before)."""
        return self.clock() - self.t_train


def save_last(s: Session, ck: dict | None = None) -> None:
    """last.ckpt at the position in `parts.state` (mid-epoch: epoch_state set; between epochs: None).
    With several processes every rank calls it: their running sums are gathered (a collective)."""
    p, ts = s.parts, s.parts.state
    ts.train_seconds = s.elapsed()
    sums = (
        distributed.gather_epoch_sums(ts.epoch_state, p.device)
        if p.world_size > 1 and ts.epoch_state is not None
        else None
    )
    if p.is_main:
        ck = ck if ck is not None else p.model_checkpoint(ts.epoch, {})
        save({**ck, "train_state": ts.state_dict(epoch_sums=sums)}, p.run_dir / "last.ckpt")
    s.saved.update(epoch=ts.epoch, step=ts.epoch_state.step if ts.epoch_state is not None else 0)


def replan(s: Session, update: Callable[..., Any], *args) -> None:
    """A time budget's new plan (`update(*args)`: budget.observe or budget.end_epoch), the same on every process."""
    p, budget = s.parts, s.parts.state.budget
    update(*args)
    if p.world_size > 1:
        budget.total = int(distributed.broadcast_object(budget.total))
    if p.state.lookahead is not None:
        p.state.lookahead.total = budget.total
    s.progress.epochs = p.planned_epochs()


def nonfinite_error(e: NonFiniteLossError, s: Session, epoch: int) -> NonFiniteLossError:
    """The loop's NonFiniteLossError as one that says where (epoch, global step, last saved position) and what to do."""
    p, ts = s.parts, s.parts.state
    last = e.last_finite if e.last_finite is not None else (ts.rows[-1]["train_loss"] if ts.rows else None)
    spe = p.steps_per_epoch
    message = nan_message(
        e,
        epoch=epoch,
        steps=spe,
        global_step=(epoch - 1) * spe + e.step,
        last_finite=last,
        lr=ts.optimizer.param_groups[0]["lr"],
        precision=p.cfg.runtime.precision,
        run_dir=p.folder,
        saved_epoch=s.saved["epoch"],
        saved_step=s.saved["step"],
    )
    return NonFiniteLossError(message, step=e.step, value=e.value, last_finite=last)
