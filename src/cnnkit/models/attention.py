"""Attention blocks that re-weight a feature map: Squeeze-and-Excitation and CBAM.

Squeeze-and-Excitation (Hu et al., 2018) learns one weight per channel from the channel's
global average:

    s = sigmoid(W2 relu(W1 gap(x)))        W1: C -> C/r, W2: C/r -> C
    y = x * s                              every position of channel c scaled by s_c

CBAM (Woo et al., 2018) follows a channel gate with a spatial one:

    Mc = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))      one shared MLP, C -> C/r -> C
    x' = x * Mc
    Ms = sigmoid(conv7x7([mean_c(x'), max_c(x')]))      a (B, 1, H, W) map: where to look
    y  = x' * Ms

`SpatialAttention` returns Ms itself, so `cnnkit explain --method attention` reads it with a
forward hook (explain/attention_map.py); no module keeps state between calls.
`add_attention(net, kind)` puts a block at the end of every residual branch of a torchvision
ResNet, before the addition (where SE-ResNet and CBAM-ResNet put it).
"""

from __future__ import annotations

import torch
from torch import nn

KINDS = ("se", "cbam")


def hidden_channels(channels: int, reduction: int) -> int:
    """The bottleneck of the gate's MLP: C // r, at least 1 (a 4-channel map with r=16 keeps one)."""
    return max(1, channels // reduction)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.fc1 = nn.Linear(channels, hidden)  # squeeze
        self.fc2 = nn.Linear(hidden, channels)  # excite

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))  # (B, C): each channel's global average
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))  # (B, C) in (0, 1)
        return x * s[:, :, None, None]  # (B, C, H, W)


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = hidden_channels(channels, reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))  # shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3)))  # (B, C)
        mx = self.mlp(x.amax(dim=(2, 3)))  # (B, C)
        return torch.sigmoid(avg + mx)[:, :, None, None]  # (B, C, 1, 1)


class SpatialAttention(nn.Module):
    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
        return torch.sigmoid(self.conv(pooled))  # (B, 1, H, W): the spatial attention map


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, kernel: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel(x)  # (B, C, H, W), channels re-weighted
        return x * self.spatial(x)  # (B, C, H, W), positions re-weighted


def attention_block(kind: str, channels: int, reduction: int = 16) -> nn.Module:
    if kind == "se":
        return SqueezeExcite(channels, reduction)
    if kind == "cbam":
        return CBAM(channels, reduction)
    raise ValueError(f"attention {kind!r}: expected one of {', '.join(KINDS)}")


def add_attention(net: nn.Module, kind: str, reduction: int = 16) -> int:
    """After the last BatchNorm of every residual branch of a torchvision ResNet (BasicBlock: bn2,
    Bottleneck: bn3), before `out += identity`. Returns the number of blocks changed."""
    n = 0
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        for block in getattr(net, stage):
            name = "bn3" if hasattr(block, "bn3") else "bn2"
            bn = getattr(block, name)
            setattr(block, name, nn.Sequential(bn, attention_block(kind, bn.num_features, reduction)))
            n += 1
    return n
