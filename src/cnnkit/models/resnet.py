"""ResNet-18/34/50 (He et al., 2015), built from torchvision and wrapped in cnnkit's interface.

`small_input=True` suits 28-64 px images: the 7x7 stride-2 stem and its max pool would
shrink a 32x32 image to 8x8 before the first residual stage, so the stem becomes a 3x3
stride-1 convolution and the max pool goes (with `pretrained`, the stem keeps its 7x7
kernel and weights and only loses the stride).

`attention="se"` or `"cbam"` adds a Squeeze-and-Excitation or CBAM block at the end of every
residual branch, before the addition (SE-ResNet, CBAM-ResNet; models/attention.py). With
`pretrained`, the published weights load first and the new blocks start from scratch.
"""

from __future__ import annotations

from typing import cast

from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models._backbone import Backbone, adapt_first_conv, finish, torchvision_net
from cnnkit.models._registry import register_model
from cnnkit.models.attention import KINDS, add_attention

STAGES = ["conv1", "layer1", "layer2", "layer3", "layer4"]


def resnet(
    arch: str, num_classes: int, in_chans: int, small_input: bool, pretrained: bool | str, attention: str | None = None
) -> Backbone:
    if attention is not None and attention not in KINDS:
        raise ConfigError(f"model.kwargs.attention: expected one of {', '.join(KINDS)} (or null), got {attention!r}")
    net, cfg = torchvision_net(arch, num_classes, pretrained)
    if attention is not None:
        add_attention(net, attention)
    if small_input:
        if pretrained:
            cast(nn.Conv2d, net.conv1).stride = (1, 1)  # keep the 7x7 weights, drop the downsampling
        else:
            net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)  # (B, 64, H, W)
        net.maxpool = nn.Identity()
    net.conv1 = adapt_first_conv(cast(nn.Conv2d, net.conv1), in_chans)
    features = [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]  # (B, 512 or 2048, H/32, W/32); H/8 with small_input
    model = Backbone(
        net,
        features=features,
        head=["gap", "fc"],
        classifier="fc",
        stages=STAGES,
        target_layer="layer4",
        pretrained_cfg=cfg,
    )
    return finish(model, num_classes, 1000 if pretrained else None)


@register_model(
    "resnet18",
    description="ResNet-18 (2015), torchvision; small_input=True: 3x3/1 stem, no max pool; attention=se|cbam",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def resnet18(
    num_classes: int = 1000,
    in_chans: int = 3,
    small_input: bool = False,
    pretrained: bool | str = False,
    attention: str | None = None,
) -> Backbone:
    return resnet("resnet18", num_classes, in_chans, small_input, pretrained, attention)


@register_model(
    "resnet34",
    description="ResNet-34 (2015), torchvision; small_input=True: 3x3/1 stem, no max pool; attention=se|cbam",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def resnet34(
    num_classes: int = 1000,
    in_chans: int = 3,
    small_input: bool = False,
    pretrained: bool | str = False,
    attention: str | None = None,
) -> Backbone:
    return resnet("resnet34", num_classes, in_chans, small_input, pretrained, attention)


@register_model(
    "resnet50",
    description="ResNet-50 (2015, bottleneck blocks), torchvision; small_input=True, attention=se|cbam as resnet18",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V2",
)
def resnet50(
    num_classes: int = 1000,
    in_chans: int = 3,
    small_input: bool = False,
    pretrained: bool | str = False,
    attention: str | None = None,
) -> Backbone:
    return resnet("resnet50", num_classes, in_chans, small_input, pretrained, attention)
