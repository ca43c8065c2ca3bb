"""`EpochState`: where an epoch stands (its data order, steps done, running sums); a step checkpoint resumes from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Sampler = Callable[[torch.Generator], torch.Tensor]  # generator -> an epoch's order (indices into the split)


@dataclass
class EpochState:
    """Where an epoch stands: its data order, steps done and running sums (a step checkpoint resumes from it)."""

    order: torch.Tensor  # the epoch's permutation of the training set
    step: int = 0  # optimiser steps done in this epoch
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    l1_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    correct: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.long))
    seen: int = 0
    skipped: int = 0  # non-finite steps skipped (on_nan="skip")
    last_finite_loss: float | None = None

    @classmethod
    def start(cls, n: int, generator: torch.Generator, sampler: Sampler | None = None) -> EpochState:
        """A new epoch: a permutation of the n images, or the order `sampler` draws (e.g. balanced,
        with replacement). The order is part of the state, so a resumed epoch replays it exactly."""
        return cls(order=torch.randperm(n, generator=generator) if sampler is None else sampler(generator))

    def to(self, device: torch.device) -> EpochState:
        """The running sums moved to `device` (in place; returns self)."""
        self.loss_sum, self.l1_sum, self.correct = (
            self.loss_sum.to(device),
            self.l1_sum.to(device),
            self.correct.to(device),
        )
        return self

    def state_dict(self) -> dict:
        return {
            "order": self.order.clone(),
            "step": self.step,
            "loss_sum": self.loss_sum.detach().cpu().clone(),
            "l1_sum": self.l1_sum.detach().cpu().clone(),
            "correct": self.correct.detach().cpu().clone(),
            "seen": self.seen,
            "skipped": self.skipped,
            "last_finite_loss": self.last_finite_loss,
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> EpochState:
        return cls(**d)
