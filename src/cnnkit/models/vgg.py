"""VGG-11 and VGG-16 (Simonyan & Zisserman, 2014), with and without batch norm, written plainly.

A variant is a list of stages, each a list of 3x3 convolution widths followed by a 2x2 max
pool that halves the image. `small_input=True` suits 28-64 px images: the fifth pool is left
out (a 28x28 image would reach 0x0), the features are globally averaged instead of pooled
to 7x7, and the fully connected layers are 512 wide instead of 4096.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase

# conv widths per stage; every stage ends in a 2x2 max pool
VARIANTS = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
}


class VGG(ClassifierBase):
    target_layer = "features.stage5"

    def __init__(
        self,
        stages: list[list[int]],
        num_classes: int = 1000,
        in_chans: int = 3,
        batch_norm: bool = False,
        small_input: bool = False,
        dropout: float = 0.5,
    ):
        super().__init__()
        pool, hidden = (1, 512) if small_input else (7, 4096)
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        c = in_chans
        for i, widths in enumerate(stages, 1):
            layers: list[nn.Module] = []
            for w in widths:
                layers += (
                    [nn.Conv2d(c, w, 3, padding=1)]
                    + ([nn.BatchNorm2d(w)] if batch_norm else [])
                    + [nn.ReLU(inplace=True)]
                )  # (B, w, H, W)
                c = w
            if not (small_input and i == len(stages)):
                layers.append(nn.MaxPool2d(2))  # (B, w, H/2, W/2); 224 -> 112 -> 56 -> 28 -> 14 -> 7
            blocks[f"stage{i}"] = nn.Sequential(*layers)
        self.features = nn.Sequential(blocks)  # (B, 512, 7, 7) at 224; (B, 512, 2, 2) at 32 with small_input
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.head = nn.Sequential(
            nn.Linear(c * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),  # (B, 4096)
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),  # (B, 4096)
        )
        self.num_features = hidden
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.pool(features).flatten(1)))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)


@register_model(
    "vgg11",
    description="VGG-11 (2014), plain; small_input=True: no 5th pool, GAP, 512-wide FC",
    default_input=(3, 224, 224),
)
def vgg11(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, dropout: float = 0.5) -> VGG:
    return VGG(VARIANTS["vgg11"], num_classes, in_chans, batch_norm=False, small_input=small_input, dropout=dropout)


@register_model(
    "vgg11_bn", description="VGG-11 with batch norm; small_input=True as vgg11", default_input=(3, 224, 224)
)
def vgg11_bn(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, dropout: float = 0.5) -> VGG:
    return VGG(VARIANTS["vgg11"], num_classes, in_chans, batch_norm=True, small_input=small_input, dropout=dropout)


@register_model("vgg16", description="VGG-16 (2014), plain; small_input=True as vgg11", default_input=(3, 224, 224))
def vgg16(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, dropout: float = 0.5) -> VGG:
    return VGG(VARIANTS["vgg16"], num_classes, in_chans, batch_norm=False, small_input=small_input, dropout=dropout)


@register_model(
    "vgg16_bn", description="VGG-16 with batch norm; small_input=True as vgg11", default_input=(3, 224, 224)
)
def vgg16_bn(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, dropout: float = 0.5) -> VGG:
    return VGG(VARIANTS["vgg16"], num_classes, in_chans, batch_norm=True, small_input=small_input, dropout=dropout)
