"""The one-stage alternative: torchvision's FCOS (Tian et al. 2019) over the tiny backbone.

Why FCOS rather than RetinaNet or SSDlite, for training from scratch on a CPU on small images: it is
anchor-free (one point per feature-map location, no anchor shapes to tune to the digits), its centre-ness
branch and GIoU box loss converge from random weights in a few epochs, and it runs on the one stride-4
feature map the tiny backbone gives (RetinaNet's focal loss needs many anchors per location and is slow to
start from scratch; SSDlite needs torchvision's MobileNetV3 feature layout and 320 px inputs).

`fcos_tiny`: TinyBackbone (stride 4) -> a 1x1 projection to a multiple of 32 channels when needed (the FCOS
head's GroupNorm has 32 groups) -> FCOSHead with 2 convs per branch. `anchor_sizes` holds one value, the
scale of a location (torchvision divides the regressed distances by it and centre-samples within 1.5 of it).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead

from cnnkit.errors import ConfigError


class ShiftedFCOS(FCOS):  # type: ignore[misc]  # torchvision is untyped
    """FCOS over `num_classes` outputs (no background class: a location matches no box, or one) that takes and
    gives labels 1..num_classes like Faster R-CNN, so the loop, metrics and predict treat both alike."""

    def compute_loss(self, targets: list[dict[str, Tensor]], *args: Any) -> dict[str, Tensor]:
        shifted = [t | {"labels": t["labels"] - 1} for t in targets]
        losses: dict[str, Tensor] = super().compute_loss(shifted, *args)
        return losses

    def postprocess_detections(self, *args: Any) -> list[dict[str, Tensor]]:
        return [d | {"labels": d["labels"] + 1} for d in super().postprocess_detections(*args)]


def create_fcos(
    backbone: nn.Module, out_channels: int, num_classes: int, kw: dict[str, Any], common: dict[str, Any]
) -> FCOS:
    """FCOS for `num_classes` object classes (labels 1..num_classes in and out: ShiftedFCOS)."""
    sizes = list(kw["anchor_sizes"])
    if len(sizes) != 1 or isinstance(sizes[0], list | tuple):
        raise ConfigError(
            f"model.kwargs.anchor_sizes: fcos_tiny has one feature map and is anchor-free; give one size "
            f"(the scale of a location, e.g. [8]), got {sizes}"
        )
    channels = -(-out_channels // 32) * 32
    if channels != out_channels:
        backbone = nn.Sequential(backbone, nn.Conv2d(out_channels, channels, 1))
    backbone.out_channels = channels  # type: ignore[assignment]  # FCOS reads this
    anchors = AnchorGenerator(((int(sizes[0]),),), ((1.0,),))
    return ShiftedFCOS(
        backbone,
        num_classes,
        anchor_generator=anchors,
        head=FCOSHead(channels, 1, num_classes, num_convs=2),
        score_thresh=0.05,
        topk_candidates=300,
        **common,
    )
