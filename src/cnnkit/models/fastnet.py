"""A fast residual family for 28-64 px images, in the style of the CIFAR-10 speed-record
networks (Page's ResNet-9, hlb-CIFAR10, airbench): conv-BN-GELU everywhere, a
convolution + 2x2 max pool opening each stage, and a residual pair of conv-BN-GELU layers
after it; global max + average pooling and a bias-free linear head whose logits are
scaled down (by 1/8), as airbench scales its output.

A variant is its stem width and stage widths.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase

VARIANTS = {
    "fastnet_s": (24, (48, 96, 192)),  # 1.1 M parameters, 64 MMACs at 32 px
    "fastnet_m": (32, (64, 128, 256)),  # 1.9 M parameters, 114 MMACs
    "fastnet_l": (64, (128, 256, 512)),  # ResNet-9 widths, 7.8 M parameters, 455 MMACs
}


def conv_bn_gelu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU())


class Stage(nn.Module):
    """conv -> pool (halves H, W) -> BN -> GELU, then x + conv-BN-GELU(conv-BN-GELU(x))."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm = nn.BatchNorm2d(c_out)
        self.act = nn.GELU()
        self.res = nn.Sequential(conv_bn_gelu(c_out, c_out), conv_bn_gelu(c_out, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm(self.pool(self.conv(x))))  # (B, c_out, H/2, W/2)
        return x + self.res(x)  # residual: same shape


class FastNet(ClassifierBase):
    def __init__(self, stem: int, widths: tuple[int, ...], num_classes: int = 10, in_chans: int = 3, scale: float = 0.125):
        super().__init__()
        stages = OrderedDict(stem=conv_bn_gelu(in_chans, stem))  # (B, stem, H, W)
        c = stem
        for i, w in enumerate(widths, 1):
            stages[f"stage{i}"] = Stage(c, w)  # (B, w, H/2^i, W/2^i)
            c = w
        self.features = nn.Sequential(stages)  # (B, widths[-1], H/8, W/8): 32 -> 4, 28 -> 3
        self.target_layer = f"features.stage{len(widths)}"
        self.num_features = 2 * c
        self.scale = scale
        self.fc = nn.Linear(2 * c, num_classes, bias=False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([features.amax((2, 3)), features.mean((2, 3))], 1)  # (B, 2C): global max and average
        return self.fc(pooled) * self.scale

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes, bias=False)


def _fastnet(variant: str, num_classes: int, in_chans: int) -> FastNet:
    stem, widths = VARIANTS[variant]
    return FastNet(stem, widths, num_classes, in_chans)


@register_model("fastnet_s", description="fast residual conv-BN-GELU net for 28-64 px (speed-record style), small", default_input=(3, 32, 32))
def fastnet_s(num_classes: int = 10, in_chans: int = 3) -> FastNet:
    return _fastnet("fastnet_s", num_classes, in_chans)


@register_model("fastnet_m", description="fast residual conv-BN-GELU net for 28-64 px, medium", default_input=(3, 32, 32))
def fastnet_m(num_classes: int = 10, in_chans: int = 3) -> FastNet:
    return _fastnet("fastnet_m", num_classes, in_chans)


@register_model("fastnet_l", description="fast residual conv-BN-GELU net for 28-64 px, ResNet-9 widths", default_input=(3, 32, 32))
def fastnet_l(num_classes: int = 10, in_chans: int = 3) -> FastNet:
    return _fastnet("fastnet_l", num_classes, in_chans)
