"""`Task`: the seam a new kind of model plugs into the training loop through.

The engine asks the training split's task (`cnnkit.tasks.task_of`):
- at setup: the model `model.name: auto` means (`default_model`), the task's hooks and config
  checks (`setup_hooks`), and whether the engine's image-only augmentation runs (`augments_images`);
- each step: the default loss of a training step, the loss it reports on evaluation, and how many
  images of a batch are right (`train_loss`, `eval_loss`, `correct`);
- at the end: the final evaluation of best.ckpt (`final_evaluation`), summary.json's numbers from it
  (`headline`) and the final line's words (`describe`).
summary.json's and the checkpoint's `task` name come from it. A method returning None leaves that
step to the engine's classification code (training/results.py, setup.py, resolve.py): tasks sit
below the engine, so classification's defaults live there. A task's report.html section is a module
in cnnkit.report.html.EXTRA_SECTIONS, and `cnnkit evaluate` / `predict` find a task's code by the
checkpoint's `task` key (cnnkit.evaluate.api.TASK_MODULES; predict: each task's commands.extend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

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

    @property
    def augments_images(self) -> bool:
        """True: the engine's image-only augmentation runs; False: the task's own batch_transform
        moves each image and its target together (segmentation's masks)."""
        ...

    def default_model(self, channels: int, side: int) -> str | None:
        """The model `model.name: auto` becomes for this task (None: the engine's classifier choice)."""
        ...

    def setup_hooks(self, cfg: Any, data: Any, hooks: Any) -> Any | None:
        """The run's hooks (training.hooks.Hooks) with the task's defaults, after checking the config
        for keys that have no meaning for it (None: the engine's classification defaults)."""
        ...

    def final_evaluation(
        self, model: torch.nn.Module, ema: Any, run_dir: Path, data: Any, cfg: Any, normalize: Any
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None] | None:
        """Score best.ckpt (and its EMA weights) on the test split, or val without one:
        (split name, metrics, EMA metrics). None: the engine's classification scoring."""
        ...

    def headline(self, final: dict[str, Any]) -> dict[str, Any] | None:
        """summary.json's numbers from the final metrics (None: the engine's)."""
        ...

    def describe(self, split: str, head: dict[str, Any]) -> str | None:
        """The final line's result words, e.g. "test mIoU 0.7787, pixel accuracy 91.70%" (None: the engine's)."""
        ...
