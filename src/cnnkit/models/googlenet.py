"""GoogLeNet / Inception v1 (Szegedy et al., 2014), torchvision's, in cnnkit's interface.

Built without the auxiliary classifiers. `small_input=True`: the 7x7 stride-2 stem becomes
stride 1 (a fresh 3x3 without `pretrained`) and the first two max pools go, so a 32x32
image enters the inception stages at 32x32 instead of 4x4 and leaves them at 8x8, not 1x1.
"""

from __future__ import annotations

from typing import cast

from torch import nn

from cnnkit.models._backbone import Backbone, adapt_first_conv, finish, torchvision_net
from cnnkit.models._registry import register_model

FEATURES = [
    "conv1",
    "maxpool1",
    "conv2",
    "conv3",
    "maxpool2",
    "inception3a",
    "inception3b",
    "maxpool3",
    "inception4a",
    "inception4b",
    "inception4c",
    "inception4d",
    "inception4e",
    "maxpool4",
    "inception5a",
    "inception5b",
]


@register_model(
    "googlenet",
    description="GoogLeNet / Inception v1 (2014), torchvision, no aux heads; small_input=True: stride-1 stem",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def googlenet(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    from torchvision.models.googlenet import BasicConv2d

    # with weights torchvision loads the aux heads and then drops them; without, ask for none
    net, cfg = torchvision_net(
        "googlenet", num_classes, pretrained, **({} if pretrained else {"aux_logits": False, "init_weights": True})
    )
    if small_input:
        if pretrained:
            net.conv1.conv.stride = (1, 1)
        else:
            net.conv1 = BasicConv2d(3, 64, kernel_size=3, stride=1, padding=1)  # (B, 64, H, W)
        net.maxpool1 = nn.Identity()
        net.maxpool2 = nn.Identity()
    net.conv1.conv = adapt_first_conv(cast(nn.Conv2d, net.conv1.conv), in_chans)
    # torchvision's pretrained GoogLeNet re-normalises its input (transform_input): keep that
    transform = "_transform_input" if (pretrained and in_chans == 3 and net.transform_input) else None
    model = Backbone(
        net,
        features=FEATURES,
        head=["gap", "dropout", "fc"],
        classifier="fc",
        stages=["conv1", "inception3a", "inception4a", "inception5a"],
        target_layer="inception5b",
        pretrained_cfg=cfg,
        input_transform=transform,
    )
    return finish(model, num_classes, 1000 if pretrained else None)
