"""Classification (one label per image: softmax cross-entropy, top-1) and multi-label
classification (several labels: BCE on each logit, exact match at sigmoid >= 0.5)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cnnkit.tasks.base import Task


def multilabel_bce(
    logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0, pos_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean binary cross-entropy over images and labels; targets (B, K) in [0, 1] (multi-hot or mixed).
    Label smoothing moves each target towards 0.5: y * (1 - e) + e / 2."""
    targets = targets.float()
    if label_smoothing:
        targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)


class _EngineStages:
    """The stages the engine's own classification code does (tasks/base.py): every method None."""

    augments_images: bool = True

    def default_model(self, channels: int, side: int) -> str | None:
        return None

    def setup_hooks(self, cfg: Any, data: Any, hooks: Any) -> Any | None:
        return None

    def final_evaluation(self, model: Any, ema: Any, run_dir: Path, data: Any, cfg: Any, normalize: Any) -> None:
        return None

    def headline(self, final: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def describe(self, split: str, head: dict[str, Any]) -> str | None:
        return None


@dataclass(frozen=True)
class Classification(_EngineStages):
    name: str = "single_label"
    checkpoint_task: str | None = None

    def train_loss(self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels)

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(1) == labels).sum()


@dataclass(frozen=True)
class MultiLabel(_EngineStages):
    name: str = "multi_label"
    checkpoint_task: str | None = "multi_label"

    def train_loss(self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
        return multilabel_bce(logits, targets, label_smoothing=label_smoothing)

    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return multilabel_bce(logits, labels)

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Exact match: every label right at sigmoid >= 0.5."""
        return ((torch.sigmoid(logits.float()) >= 0.5) == (labels > 0.5)).all(1).sum()


CLASSIFICATION: Task = Classification()
MULTI_LABEL: Task = MultiLabel()


def task_for(multi_label: bool) -> Task:
    """The task of a split or dataset from its labels' kind (`Split.multi_label`, `Dataset.multi_label`)."""
    return MULTI_LABEL if multi_label else CLASSIFICATION
