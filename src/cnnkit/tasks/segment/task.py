"""The segmentation Task: per-pixel cross-entropy (255 ignored), optionally plus Dice, and pixel accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = 255  # as data/masks.py: pixels no loss or metric counts


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the classes, from softmax probabilities; ignored pixels left out.
    logits (B, K, H, W), targets (B, H, W) class indices."""
    k = logits.shape[1]
    valid = (targets != IGNORE_INDEX).unsqueeze(1)  # (B, 1, H, W)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(targets.clamp(0, k - 1), k).permute(0, 3, 1, 2) * valid  # (B, K, H, W)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    dice = (2 * inter + eps) / (probs.sum(dims) + onehot.sum(dims) + eps)  # (K,)
    return 1.0 - dice.mean()


def segment_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    dice: float = 0.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy over the pixels (ignore index 255, optional class weights) + `dice` x Dice loss."""
    loss = F.cross_entropy(logits, targets, weight=weight, ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing)
    return loss + dice * dice_loss(logits, targets) if dice else loss


def pixel_accuracy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's pixel accuracy (ignored pixels left out): the loop divides by images."""
    valid = labels != IGNORE_INDEX
    right = ((logits.argmax(1) == labels) & valid).sum((1, 2)).float()
    return (right / valid.sum((1, 2)).clamp_min(1)).sum()


@dataclass(frozen=True)
class Segmentation:
    """One class per pixel. `accuracy` in metrics.csv is the mean over images of their pixel accuracy."""

    name: str = "segment"
    checkpoint_task: str | None = "segment"

    def train_loss(self, logits: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
        return segment_loss(logits, targets, label_smoothing=label_smoothing)

    def eval_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return segment_loss(logits, labels)

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return pixel_accuracy_sum(logits, labels)

    # masks move with their images in the task's own batch_transform (tasks/segment/augment.py)
    augments_images: bool = False

    def default_model(self, channels: int, side: int) -> str | None:
        return "unet"

    def setup_hooks(self, cfg: Any, data: Any, hooks: Any) -> Any:
        from cnnkit.tasks.segment.setup import segment_hooks

        return segment_hooks(cfg, data, hooks)

    def final_evaluation(
        self, model: torch.nn.Module, ema: Any, run_dir: Path, data: Any, cfg: Any, normalize: Any
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        from cnnkit.tasks.segment.final import final_evaluation

        return final_evaluation(model, ema, run_dir, data, cfg, normalize)

    def headline(self, final: dict[str, Any]) -> dict[str, Any]:
        """accuracy: the pixel accuracy; mean IoU and Dice beside it."""
        return {k: final[k] for k in ("accuracy", "miou", "dice", "loss", "num_samples")}

    def describe(self, split: str, head: dict[str, Any]) -> str:
        return f"{split} mIoU {head['miou']:.4f}, pixel accuracy {head['accuracy']:.2%}"


SEGMENTATION = Segmentation()
