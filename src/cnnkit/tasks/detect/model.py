"""Faster R-CNN (Ren et al. 2015) from torchvision: a backbone, the region proposal network sliding
anchors over its feature map, and RoI heads that classify and refine each proposal. No home-made
detector; no downloaded weights (none can be fetched here): both backbones start from scratch.

- `fasterrcnn_tiny`: a 4-conv backbone of stride 4 (one feature map), for small images such as
  mnist-scenes' 64x64 canvases, with a 256-wide box head; ~0.9 M parameters, trains on a CPU.
- `fasterrcnn_lite0`: the package's EfficientNet-Lite0 (pretrained with --pretrained) + FPN, three
  feature maps (strides 8, 16, 32; lite0.py).
- `fasterrcnn_mobilenet`: torchvision's fasterrcnn_mobilenet_v3_large_fpn (MobileNetV3 + FPN), for
  photos; its anchors are torchvision's (set per FPN level), its input resized to `min_size`.
- `fcos_tiny`: the one-stage alternative, torchvision's FCOS over the tiny backbone (onestage.py).

Anchors (`anchor_sizes` in pixels, `aspect_ratios` as height / width) come from `model.kwargs`: per model
defaults (DEFAULT_KWARGS) that fit MNIST digits of 17-34 px, taller than wide ("1" about 4:1). With several
feature maps (FPN), `anchor_sizes` holds one size, or one list of sizes, per map; every map must get the same
number of sizes (one RPN head slides over all of them).
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

MODELS = ("fasterrcnn_tiny", "fasterrcnn_lite0", "fasterrcnn_mobilenet", "fcos_tiny")
DEFAULT_KWARGS: dict[str, dict[str, Any]] = {
    "fasterrcnn_tiny": {"anchor_sizes": [12, 20, 32], "aspect_ratios": [1.0, 1.6, 3.0], "width": 16},
    "fasterrcnn_lite0": {"anchor_sizes": [16, 32, 64], "aspect_ratios": [1.0, 1.6, 3.0]},
    "fasterrcnn_mobilenet": {},
    "fcos_tiny": {"anchor_sizes": [8], "width": 16},
}


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


def model_kwargs(kwargs: dict[str, Any], name: str = "fasterrcnn_tiny") -> dict[str, Any]:
    """model.kwargs over `name`'s defaults; an unknown key is an error naming it."""
    if name not in DEFAULT_KWARGS:
        raise ConfigError(f"model.name {name!r} is not a detector; use one of {', '.join(MODELS)} (or auto)")
    defaults = DEFAULT_KWARGS[name]
    unknown = set(kwargs) - set(defaults) - {"min_size"}
    if unknown:
        raise ConfigError(
            f"model.kwargs: {', '.join(sorted(unknown))} not known to {name}; known: "
            f"{', '.join(sorted([*defaults, 'min_size']))}"
        )
    return defaults | kwargs


def anchor_generator(sizes: list[Any], ratios: list[Any], maps: int, name: str) -> AnchorGenerator:
    """Anchors for `maps` feature maps: `sizes` holds one size or one list of sizes per map (one map: a flat
    list is that map's sizes), as many per map. Errors name model.kwargs.anchor_sizes / aspect_ratios."""
    if maps == 1 and not any(isinstance(s, list | tuple) for s in sizes):
        sizes = [sizes]
    per_map = [list(s) if isinstance(s, list | tuple) else [s] for s in sizes]
    if len(per_map) != maps or len({len(s) for s in per_map}) != 1 or not per_map[0]:
        raise ConfigError(
            f"model.kwargs.anchor_sizes: {name} has {maps} feature map(s); give {maps} sizes (or {maps} lists "
            f"of sizes, each as long), got {sizes}"
        )
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 for s in per_map for v in s):
        raise ConfigError(f"model.kwargs.anchor_sizes: positive numbers of pixels, got {sizes}")
    if not ratios or any(isinstance(r, bool) or not isinstance(r, int | float) or r <= 0 for r in ratios):
        raise ConfigError(f"model.kwargs.aspect_ratios: positive numbers (height / width), got {ratios}")
    return AnchorGenerator(
        tuple(tuple(int(v) for v in s) for s in per_map), tuple(tuple(float(r) for r in ratios) for _ in per_map)
    )


def create_detector(
    name: str,
    num_classes: int,
    channels: int,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    kwargs: dict[str, Any],
    pretrained: bool | str = False,
) -> nn.Module:
    """A detector for `num_classes` object classes (+ torchvision's background class 0), images of
    `channels` and side `image_size` (not resized: min_size = max_size = the side), normalised with mean/std
    (Lite0: its own TF-Lite mean/std). `pretrained`: the Lite0 backbone's package weights."""
    kw = model_kwargs(kwargs, name)
    side = int(kw.get("min_size", image_size))
    common: dict[str, Any] = {"min_size": side, "max_size": side, "image_mean": list(mean), "image_std": list(std)}
    if pretrained and name != "fasterrcnn_lite0":
        raise ConfigError(f"model.pretrained: {name} has no pretrained weights here; use fasterrcnn_lite0")
    if name == "fcos_tiny":
        from cnnkit.tasks.detect.onestage import create_fcos

        tiny = TinyBackbone(channels, int(kw["width"]))
        fcos: nn.Module = create_fcos(tiny, tiny.out_channels, num_classes, kw, common)
        return fcos
    if name == "fasterrcnn_mobilenet":
        from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

        if channels != 3:
            raise ConfigError("model.name fasterrcnn_mobilenet takes 3-channel images; use --channels 3")
        mobilenet: nn.Module = fasterrcnn_mobilenet_v3_large_fpn(
            weights=None, weights_backbone=None, num_classes=num_classes + 1, **common
        )
        return mobilenet
    if name == "fasterrcnn_lite0":
        from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD
        from cnnkit.tasks.detect.lite0 import STAGES, Lite0FPN

        backbone: nn.Module = Lite0FPN(channels, pretrained)
        maps = [str(i) for i in range(len(STAGES))]
        common |= {"image_mean": [LITE0_MEAN[0]] * channels, "image_std": [LITE0_STD[0]] * channels}
    else:
        backbone, maps = TinyBackbone(channels, int(kw["width"])), ["0"]
    out = int(backbone.out_channels)  # type: ignore[arg-type]
    model: nn.Module = FasterRCNN(
        backbone,
        rpn_anchor_generator=anchor_generator(kw["anchor_sizes"], kw["aspect_ratios"], len(maps), name),
        box_roi_pool=MultiScaleRoIAlign(featmap_names=maps, output_size=7, sampling_ratio=1),
        box_head=TwoMLPHead(out * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_classes + 1),
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        box_batch_size_per_image=64,
        **common,
    )
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def as_targets(
    boxes: list[torch.Tensor], labels: list[torch.Tensor], device: torch.device
) -> list[dict[str, torch.Tensor]]:
    """torchvision's targets: labels shifted by one (0 is its background)."""
    return [{"boxes": b.to(device), "labels": (c + 1).to(device)} for b, c in zip(boxes, labels, strict=True)]
