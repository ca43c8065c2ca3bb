"""Training losses: class-weighted cross-entropy and the multi-label (sigmoid / BCE) loss.

`optim.class_weights` chooses the weights from the training labels (`cnnkit.data.balance`):
    none      no weights (the loop's default loss; the default recipe is unchanged)
    balanced  inverse class frequency: cross-entropy `weight` = class_weights(labels, K);
              multi-label: BCE `pos_weight` = negatives / positives of each label
    sqrt      the square root of those (a milder correction)

Multi-label data (labels (N, K) multi-hot) train with binary cross-entropy on each label's
logit; label smoothing moves each target towards 0.5: y * (1 - e) + e / 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnkit.data.balance import class_weights, pos_weight
from cnnkit.tasks.classify import multilabel_bce  # defined with its task


def loss_weights(mode: str, labels: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """(K,) weights for `mode` from the training labels: cross-entropy class weights for
    (N,) labels, BCE pos_weight for (N, K) multi-hot labels; None for "none"."""
    if mode == "none":
        return None
    power = 1.0 if mode == "balanced" else 0.5
    if labels.ndim == 2:
        return pos_weight(labels).pow(power)
    return class_weights(labels, num_classes, power=power)


class WeightedLoss:
    """`loss(logits, targets)`: class-weighted cross-entropy (targets: indices or soft rows),
    or for multi-label data BCE with `pos_weight`. The weights follow the logits' device."""

    def __init__(self, weights: torch.Tensor, *, multi_label: bool, label_smoothing: float = 0.0) -> None:
        self.weights, self.multi_label, self.label_smoothing = weights.float(), multi_label, label_smoothing

    def _on(self, device: torch.device) -> torch.Tensor:
        if self.weights.device != device:
            self.weights = self.weights.to(device)
        return self.weights

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = self._on(logits.device)
        if self.multi_label:
            return multilabel_bce(logits, targets, label_smoothing=self.label_smoothing, pos_weight=w)
        return F.cross_entropy(logits, targets, weight=w, label_smoothing=self.label_smoothing)


def build_loss(
    mode: str, labels: torch.Tensor, num_classes: int, *, label_smoothing: float = 0.0
) -> WeightedLoss | None:
    """The loss `optim.class_weights` asks for, or None: the loop's default (cross-entropy, or
    BCE for multi-hot labels), so an unweighted run takes exactly the same path as before."""
    w = loss_weights(mode, labels, num_classes)
    if w is None:
        return None
    return WeightedLoss(w, multi_label=labels.ndim == 2, label_smoothing=label_smoothing)
