"""ConvNeXt-Tiny (Liu et al., 2022), torchvision's, in cnnkit's interface.

`small_input=True`: the 4x4 stride-4 patchify stem becomes stride 2 (padding 1, the same
4x4 kernel, so pretrained weights still fit): 32 -> 16 -> 8 -> 4 -> 2 through the stages.
"""

from __future__ import annotations

from typing import cast

from torch import nn

from cnnkit.models._backbone import Backbone, adapt_first_conv, finish, torchvision_net
from cnnkit.models._registry import register_model


@register_model(
    "convnext_tiny",
    description="ConvNeXt-Tiny (2022), torchvision; small_input=True: 4x4/2 stem",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def convnext_tiny(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    net, cfg = torchvision_net("convnext_tiny", num_classes, pretrained)
    stem = cast(nn.Conv2d, net.features[0][0])  # torch types submodules as Tensor | Module
    if small_input:
        stem.stride, stem.padding = (2, 2), (1, 1)  # (B, 96, H/2, W/2) instead of H/4
    cast(nn.Sequential, net.features[0])[0] = adapt_first_conv(stem, in_chans)
    stages = [
        "features.0",
        "features.1",
        "features.3",
        "features.5",
        "features.7",
    ]  # stem, then the four stages (downsampling layers between)
    # head: avgpool (B, 768, 1, 1) -> LayerNorm2d -> flatten -> Linear
    model = Backbone(
        net,
        features=["features"],
        head=["avgpool", "classifier"],
        classifier="classifier.2",
        stages=stages,
        target_layer="features.7",
        pretrained_cfg=cfg,
    )
    return finish(model, num_classes, 1000 if pretrained else None)
