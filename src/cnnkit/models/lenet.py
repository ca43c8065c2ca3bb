"""LeNet-5 (LeCun et al., 1998), written plainly.

The original takes 32x32 inputs; MNIST's 28x28 digits are padded by 2 in the first
convolution, as is usual. Other sizes work: the classifier's input is sized at build time.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


class LeNet5(ClassifierBase):
    target_layer = "features.conv2"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, image_size: int = 28, activation: str = "tanh"):
        super().__init__()
        act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
        pad = 2 if image_size == 28 else 0
        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(in_chans, 6, 5, padding=pad))  # (B, 6, 28, 28) for 32x32 input
        self.features.add_module("act1", act())
        self.features.add_module("pool1", nn.AvgPool2d(2))  # (B, 6, 14, 14): subsampling
        self.features.add_module("conv2", nn.Conv2d(6, 16, 5))  # (B, 16, 10, 10)
        self.features.add_module("act2", act())
        self.features.add_module("pool2", nn.AvgPool2d(2))  # (B, 16, 5, 5)
        side = ((image_size + 2 * pad - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(
                f"LeNet-5 needs inputs of at least 28x28 (with padding) or 32x32; got image_size={image_size}"
            )
        self.num_features = 16 * side * side
        self.head = nn.Sequential(nn.Linear(self.num_features, 120), act(), nn.Linear(120, 84), act())  # C5, F6
        self.fc = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(features.flatten(1)))  # (B, 16*5*5) -> (B, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(84, num_classes)


@register_model("lenet5", description="LeNet-5 (1998): two conv + avg-pool stages, three FC layers")
def lenet5(num_classes: int = 10, in_chans: int = 1, image_size: int = 28, activation: str = "tanh") -> LeNet5:
    return LeNet5(num_classes, in_chans, image_size=image_size, activation=activation)
