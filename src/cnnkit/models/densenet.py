"""DenseNet-121 (Huang et al., 2017), torchvision's, in cnnkit's interface.

`small_input=True`: the 7x7 stride-2 stem becomes 3x3 stride 1 (stride 1 only, with
`pretrained`) and its max pool goes; the three transitions still halve the size (32 -> 4).
"""

from __future__ import annotations

from typing import cast

from torch import nn

from cnnkit.models._backbone import Backbone, adapt_first_conv, finish, torchvision_net
from cnnkit.models._registry import register_model


@register_model(
    "densenet121",
    description="DenseNet-121 (2017), torchvision; small_input=True: 3x3/1 stem, no max pool",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def densenet121(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    net, cfg = torchvision_net("densenet121", num_classes, pretrained)
    f = net.features
    if small_input:
        if pretrained:
            f.conv0.stride = (1, 1)
        else:
            f.conv0 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)  # (B, 64, H, W)
        f.pool0 = nn.Identity()
    f.conv0 = adapt_first_conv(cast(nn.Conv2d, f.conv0), in_chans)
    stages = [
        "features.conv0",
        "features.denseblock1",
        "features.denseblock2",
        "features.denseblock3",
        "features.denseblock4",
    ]
    model = Backbone(
        net,
        features=["features"],
        head=["relu", "gap", "classifier"],
        classifier="classifier",
        stages=stages,
        target_layer="features.norm5",
        pretrained_cfg=cfg,
    )  # features: (B, 1024, H/32, W/32)
    return finish(model, num_classes, 1000 if pretrained else None)
