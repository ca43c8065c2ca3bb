"""Faster R-CNN (Ren et al. 2015) from torchvision: a backbone, the region proposal network sliding
anchors over its feature map, and RoI heads that classify and refine each proposal. No home-made
detector; no downloaded weights (none can be fetched here): both backbones start from scratch.

- `fasterrcnn_tiny`: a 4-conv backbone of stride 4 (one feature map), for small images such as
  mnist-scenes' 64x64 canvases, with a 256-wide box head; ~0.9 M parameters, trains on a CPU.
- `fasterrcnn_mobilenet`: torchvision's fasterrcnn_mobilenet_v3_large_fpn (MobileNetV3 + FPN), for
  photos; its anchors are torchvision's (set per FPN level), its input resized to `min_size`.

Anchors (`anchor_sizes` in pixels, `aspect_ratios` as height / width) come from `model.kwargs`; the
defaults fit MNIST digits of 17-34 px, taller than wide ("1" about 4:1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from cnnkit.errors import ConfigError

MODELS = ("fasterrcnn_tiny", "fasterrcnn_mobilenet")
DEFAULT_KWARGS: dict[str, Any] = {"anchor_sizes": [12, 20, 32], "aspect_ratios": [1.0, 1.6, 3.0], "width": 16}


class TinyBackbone(nn.Sequential):
    """conv-bn-relu x 4, stride 4: (B, C, H, W) -> (B, 4 * width, H/4, W/4)."""

    def __init__(self, in_channels: int, width: int = 32):
        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        super().__init__(
            *block(in_channels, width, 1),
            *block(width, 2 * width, 2),  # (B, 2w, H/2, W/2)
            *block(2 * width, 4 * width, 2),  # (B, 4w, H/4, W/4)
            *block(4 * width, 4 * width, 1),
        )
        self.out_channels = 4 * width  # FasterRCNN reads this


def model_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """model.kwargs over the defaults; an unknown key is an error naming it."""
    unknown = set(kwargs) - set(DEFAULT_KWARGS) - {"min_size"}
    if unknown:
        raise ConfigError(
            f"model.kwargs: {', '.join(sorted(unknown))} not known to the detectors; known: "
            f"{', '.join(sorted(DEFAULT_KWARGS))}, min_size"
        )
    return DEFAULT_KWARGS | kwargs


def create_detector(
    name: str,
    num_classes: int,
    channels: int,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    kwargs: dict[str, Any],
) -> FasterRCNN:
    """Faster R-CNN for `num_classes` object classes (+ torchvision's background class 0), images of
    `channels` and side `image_size` (not resized: min_size = max_size = the side), normalised with mean/std."""
    kw = model_kwargs(kwargs)
    common: dict[str, Any] = {
        "min_size": int(kw.get("min_size", image_size)),
        "max_size": int(kw.get("min_size", image_size)),
        "image_mean": list(mean),
        "image_std": list(std),
    }
    if name == "fasterrcnn_tiny":
        backbone = TinyBackbone(channels, int(kw["width"]))
        anchors = AnchorGenerator(
            (tuple(int(s) for s in kw["anchor_sizes"]),), (tuple(float(r) for r in kw["aspect_ratios"]),)
        )
        roi = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=1)
        return FasterRCNN(
            backbone,
            rpn_anchor_generator=anchors,
            box_roi_pool=roi,
            box_head=TwoMLPHead(backbone.out_channels * 7 * 7, 256),
            box_predictor=FastRCNNPredictor(256, num_classes + 1),
            rpn_pre_nms_top_n_train=600,
            rpn_post_nms_top_n_train=300,
            rpn_pre_nms_top_n_test=300,
            rpn_post_nms_top_n_test=100,
            box_batch_size_per_image=64,
            **common,
        )
    if name == "fasterrcnn_mobilenet":
        from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

        if channels != 3:
            raise ConfigError("model.name fasterrcnn_mobilenet takes 3-channel images; use --channels 3")
        return fasterrcnn_mobilenet_v3_large_fpn(
            weights=None, weights_backbone=None, num_classes=num_classes + 1, **common
        )
    raise ConfigError(f"model.name {name!r} is not a detector; use one of {', '.join(MODELS)} (or auto)")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def as_targets(
    boxes: list[torch.Tensor], labels: list[torch.Tensor], device: torch.device
) -> list[dict[str, torch.Tensor]]:
    """torchvision's targets: labels shifted by one (0 is its background)."""
    return [{"boxes": b.to(device), "labels": (c + 1).to(device)} for b, c in zip(boxes, labels, strict=True)]
