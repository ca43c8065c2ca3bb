"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012), written plainly (torchvision's
single-tower layout: 64-192-384-256-256 channels).

`small_input=True` suits 28-64 px images: the 11x11 stride-4 first convolution would turn a
32x32 image into 7x7 before anything is learned, so it becomes 5x5 stride 1, the pooled map
is 2x2 instead of 6x6 and the fully connected layers are 1024 wide instead of 4096.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


class AlexNet(ClassifierBase):
    target_layer = "features.relu5"

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, dropout: float = 0.5):
        super().__init__()
        k1, s1, p1 = (5, 1, 2) if small_input else (11, 4, 2)
        pool, hidden = (2, 1024) if small_input else (6, 4096)
        # shapes for a 3x224x224 input (small_input, 3x32x32: 32 -> 15 -> 7 -> 3 -> 2x2 pooled)
        self.features = nn.Sequential(
            OrderedDict(
                [
                    ("conv1", nn.Conv2d(in_chans, 64, k1, stride=s1, padding=p1)),  # (B, 64, 55, 55)
                    ("relu1", nn.ReLU(inplace=True)),
                    ("pool1", nn.MaxPool2d(3, stride=2)),  # (B, 64, 27, 27): overlapping pooling
                    ("conv2", nn.Conv2d(64, 192, 5, padding=2)),  # (B, 192, 27, 27)
                    ("relu2", nn.ReLU(inplace=True)),
                    ("pool2", nn.MaxPool2d(3, stride=2)),  # (B, 192, 13, 13)
                    ("conv3", nn.Conv2d(192, 384, 3, padding=1)),  # (B, 384, 13, 13)
                    ("relu3", nn.ReLU(inplace=True)),
                    ("conv4", nn.Conv2d(384, 256, 3, padding=1)),  # (B, 256, 13, 13)
                    ("relu4", nn.ReLU(inplace=True)),
                    ("conv5", nn.Conv2d(256, 256, 3, padding=1)),  # (B, 256, 13, 13)
                    ("relu5", nn.ReLU(inplace=True)),
                ]
            )
        )
        self.pool = nn.Sequential(nn.MaxPool2d(3, stride=2), nn.AdaptiveAvgPool2d(pool))  # (B, 256, 6, 6)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * pool * pool, hidden),
            nn.ReLU(inplace=True),  # (B, 4096)
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),  # (B, 4096)
        )
        self.num_features = hidden
        self.fc = nn.Linear(hidden, num_classes)  # (B, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.pool(features).flatten(1)))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)


@register_model(
    "alexnet",
    description="AlexNet (2012), plain; small_input=True: 5x5/1 first conv, 1024-wide FC",
    default_input=(3, 224, 224),
)
def alexnet(num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, dropout: float = 0.5) -> AlexNet:
    return AlexNet(num_classes, in_chans, small_input=small_input, dropout=dropout)
