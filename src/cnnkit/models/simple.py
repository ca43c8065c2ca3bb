"""The default small CNN: conv -> batch norm -> ReLU blocks, max pooling, global average
pooling, dropout, and a linear head. Fast on a CPU at 28-64 px."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SimpleCNN(ClassifierBase):
    """Stages of `depth` conv-BN-ReLU layers; a 2x2 max pool between stages; widths double."""

    target_layer = "features.stage{last}"

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        width: int = 16,
        stages: int = 3,
        depth: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        layers: dict[str, nn.Module] = {}
        c = in_chans
        for i in range(stages):
            c_out = width * 2**i
            block = conv_bn_relu(c, c_out) + [m for _ in range(depth - 1) for m in conv_bn_relu(c_out, c_out)]
            if i < stages - 1:
                block.append(nn.MaxPool2d(2))  # (B, C, H/2, W/2)
            layers[f"stage{i}"] = nn.Sequential(*block)
            c = c_out
        self.features = nn.Sequential(
            OrderedDict(layers)
        )  # (B, width * 2^(stages-1), H / 2^(stages-1), W / 2^(stages-1))
        self.target_layer = f"features.stage{stages - 1}"
        self.num_features = c
        self.pool = nn.AdaptiveAvgPool2d(1)  # global average pooling: (B, C, 1, 1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(features).flatten(1)))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)


@register_model("simple_cnn", description="small conv-BN-ReLU CNN with GAP head")
def simple_cnn(
    num_classes: int = 10, in_chans: int = 1, width: int = 16, stages: int = 3, depth: int = 2, dropout: float = 0.1
) -> SimpleCNN:
    return SimpleCNN(num_classes, in_chans, width=width, stages=stages, depth=depth, dropout=dropout)
