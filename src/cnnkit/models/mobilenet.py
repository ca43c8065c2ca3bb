"""MobileNetV2 (Sandler et al., 2018) and MobileNetV3 (Howard et al., 2019), torchvision's.

`small_input=True` sets the stem convolution's stride to 1 (total stride 16 instead of 32:
a 32x32 image ends at 2x2 instead of 1x1); pretrained stem weights are kept.
"""

from __future__ import annotations

from typing import cast

from torch import nn

from cnnkit.models._backbone import Backbone, adapt_first_conv, finish, torchvision_net
from cnnkit.models._registry import register_model

# arch -> path of the final Linear inside `classifier`
VARIANTS = {"mobilenet_v2": "classifier.1", "mobilenet_v3_small": "classifier.3", "mobilenet_v3_large": "classifier.3"}


def mobilenet(arch: str, num_classes: int, in_chans: int, small_input: bool, pretrained: bool | str) -> Backbone:
    net, cfg = torchvision_net(arch, num_classes, pretrained)
    stem = cast(nn.Conv2d, net.features[0][0])  # torch types submodules as Tensor | Module
    if small_input:
        stem.stride = (1, 1)
    cast(nn.Sequential, net.features[0])[0] = adapt_first_conv(stem, in_chans)
    n = len(cast(nn.Sequential, net.features))
    stages = ["features.0"] + [f"features.{i}" for i in range(1, n)]
    model = Backbone(
        net,
        features=["features"],
        head=["gap", "classifier"],
        classifier=VARIANTS[arch],
        stages=stages,
        target_layer=f"features.{n - 1}",
        pretrained_cfg=cfg,
    )
    return finish(model, num_classes, 1000 if pretrained else None)


@register_model(
    "mobilenet_v2",
    description="MobileNetV2 (2018), torchvision; small_input=True: stride-1 stem",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V2",
)
def mobilenet_v2(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    return mobilenet("mobilenet_v2", num_classes, in_chans, small_input, pretrained)


@register_model(
    "mobilenet_v3_small",
    description="MobileNetV3-Small (2019), torchvision; small_input=True: stride-1 stem",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def mobilenet_v3_small(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    return mobilenet("mobilenet_v3_small", num_classes, in_chans, small_input, pretrained)


@register_model(
    "mobilenet_v3_large",
    description="MobileNetV3-Large (2019), torchvision; small_input=True: stride-1 stem",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V2",
)
def mobilenet_v3_large(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    return mobilenet("mobilenet_v3_large", num_classes, in_chans, small_input, pretrained)
