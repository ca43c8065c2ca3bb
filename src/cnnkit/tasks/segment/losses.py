"""A segmentation run's training loss from the `segment:` config section:

    segment.loss           ce | dice | ce+dice   (cross-entropy, soft Dice, their sum)
    segment.class_weights  none | auto (inverse pixel frequency of the train masks) | "w0,w1,..." (one per class)
    segment.border_weight  the U-Net paper's w0 for pixels between touching objects (border.py; 0: off)
    segment.border_sigma   its sigma in pixels

Class and border weights weight the cross-entropy term (a weighted mean over the labelled pixels,
as torch's `cross_entropy(weight=...)`); Dice is unweighted. Pixels labelled 255 count in neither.
The run gets it as its loss hook (setup.py); plain `ce` without weights keeps the Task's default
loss (task.segment_loss). Validation reports the plain cross-entropy whatever the training loss."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from cnnkit.errors import ConfigError
from cnnkit.tasks.segment.border import BorderWeights
from cnnkit.tasks.segment.task import IGNORE_INDEX, dice_loss


def pixel_counts(masks: torch.Tensor, num_classes: int, chunk: int = 256) -> torch.Tensor:
    """(K,) labelled pixels per class over masks (N, H, W) (255 left out), a few images at a time."""
    counts = torch.zeros(256, dtype=torch.long)
    for i in range(0, len(masks), chunk):
        counts += torch.bincount(masks[i : i + chunk].flatten().long().clamp(0, 255), minlength=256)[:256]
    return counts[:num_classes]


def inverse_frequency(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K,) weights total / (K_present * count_c): 1 for every class when balanced; 0 for absent classes."""
    counts = pixel_counts(masks, num_classes).double()
    present = counts > 0
    w = torch.where(present, counts.sum() / (present.sum().clamp_min(1) * counts.clamp_min(1)), 0.0)
    return w.float()


def class_weights(value: str, masks: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """segment.class_weights read: None for none; a ConfigError naming the key for anything else than auto or K numbers."""
    text = value.strip()
    if text == "none":
        return None
    if text == "auto":
        return inverse_frequency(masks, num_classes)
    try:
        numbers = [float(v) for v in text.strip("[]").split(",")]
    except ValueError:
        numbers = []
    if len(numbers) != num_classes or any(not (v >= 0 and v < float("inf")) for v in numbers):
        raise ConfigError(
            f"segment.class_weights: {value!r} is not none, auto, or {num_classes} comma-separated non-negative "
            f"numbers (one per class), e.g. {','.join(['1'] * num_classes)}"
        )
    return torch.tensor(numbers)


class SegmentLoss:
    """`loss(logits (B, K, H, W), targets (B, H, W))` of `kind` (ce | dice | ce+dice), cross-entropy weighted by
    class weights (K,) and / or border weights (a BorderWeights)."""

    def __init__(
        self,
        kind: str = "ce",
        *,
        weights: torch.Tensor | None = None,
        border: BorderWeights | None = None,
        label_smoothing: float = 0.0,
    ):
        self.kind, self.weights, self.border, self.label_smoothing = kind, weights, border, label_smoothing

    def cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = None if self.weights is None else self.weights.to(logits.device)
        if self.border is None:
            return F.cross_entropy(
                logits, targets, weight=w, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing
            )
        per_pixel = F.cross_entropy(
            logits, targets, ignore_index=IGNORE_INDEX, label_smoothing=self.label_smoothing, reduction="none"
        )
        wmap = self.border(targets)  # the class weights are inside the map (w_c)
        return (per_pixel * wmap).sum() / wmap.sum().clamp_min(1e-12)

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.kind == "dice":
            return dice_loss(logits, targets)
        ce = self.cross_entropy(logits, targets)
        return ce + dice_loss(logits, targets) if self.kind == "ce+dice" else ce


def build_segment_loss(cfg: Any, masks: torch.Tensor, num_classes: int) -> SegmentLoss | None:
    """The loss the config's `segment:` section asks for; None for plain cross-entropy (the Task's default)."""
    sc = cfg.segment
    weights = class_weights(sc.class_weights, masks, num_classes)
    if sc.loss == "dice" and (weights is not None or sc.border_weight):
        key = "segment.class_weights" if weights is not None else "segment.border_weight"
        raise ConfigError(f"{key}: weights the cross-entropy term; segment.loss is dice alone (use ce or ce+dice)")
    if sc.loss == "ce" and weights is None and not sc.border_weight:
        return None
    border = BorderWeights(sc.border_weight, sc.border_sigma, weights) if sc.border_weight else None
    return SegmentLoss(sc.loss, weights=weights, border=border, label_smoothing=cfg.optim.label_smoothing)
