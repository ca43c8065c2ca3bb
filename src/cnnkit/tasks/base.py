"""`Task`: the seam a new kind of model plugs into the training loop through.

The loop (training/loop.py) asks the split's task for the default loss of a training step,
the loss it reports on evaluation, and how many images of a batch are right; summary.json's
and the checkpoint's `task` name come from it. Final metrics, report sections and how
`predict` shows an output are the next methods to move here (issue 13).
"""

from __future__ import annotations

from typing import Protocol

import torch


class Task(Protocol):
    # read-only properties, so that frozen dataclasses satisfy the protocol
    @property
    def name(self) -> str:
        """summary.json's "task"."""
        ...

    @property
    def checkpoint_task(self) -> str | None:
        """The checkpoint's "task" key (None: not written, single-label classification)."""
        ...

    def train_loss(self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
        """The default loss of a training step (targets may be soft: mixup / cutmix)."""
        ...

    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss reported on a validation / test split (no smoothing)."""
        ...

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """How many images of the batch are right (a 0-d tensor, summed without a sync)."""
        ...
