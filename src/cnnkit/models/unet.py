"""U-Net (Ronneberger, Fischer and Brox, 2015), written plainly in the paper's shape.

    contracting path: a double 3x3 convolution per level, 2x2 max pooling between levels,
                      the channels doubling at each level (64 -> 1024 in the paper: width 64, depth 4)
    expanding path:   a 2x2 transposed convolution (the "up-convolution") halving the channels,
                      concatenation with the contracting path's map of the same level (the skip),
                      then a double 3x3 convolution
    head:             a 1x1 convolution to one logit per class and pixel

Two departures, both usual today: padded ("same") convolutions, so the output has the input's size
(the paper's unpadded ones lose 184 px and need tiling with a mirrored border), and batch norm after
each convolution (trains at the higher rates of the default schedule). Any input size works: where a
pooling floors an odd side, the upsampled map is padded back to its skip's size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


class DoubleConv(nn.Sequential):
    """(conv 3x3 -> BN -> ReLU) x 2, the unit of both paths."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """One step down the contracting path: max pool 2x2, then a double convolution doubling the channels."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(cin, cout))


class Up(nn.Module):
    """One step up the expanding path: up-convolution, skip concatenation, double convolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)  # (B, cin, h, w) -> (B, cout, 2h, 2w)
        self.conv = DoubleConv(2 * cout, cout)  # after concatenation with the skip: 2 * cout channels

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:  # an odd side was floored by the pooling: pad back to the skip's size
            x = F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return self.conv(torch.cat([skip, x], dim=1))  # (B, 2 * cout, H, W) -> (B, cout, H, W)


class UNet(ClassifierBase):
    """`width` channels at the first level, doubling over `depth` poolings (paper: 64, 4)."""

    target_layer = "ups.0"  # the last decoder stage before the 1x1 head (Grad-CAM's layer)

    def __init__(self, num_classes: int = 2, in_chans: int = 1, width: int = 64, depth: int = 4):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError(f"U-Net needs width >= 1 and depth >= 1, got width={width}, depth={depth}")
        chans = [width * 2**i for i in range(depth + 1)]  # e.g. 64, 128, 256, 512, 1024
        self.width, self.depth = width, depth
        self.stem = DoubleConv(in_chans, chans[0])  # (B, w, H, W)
        self.downs = nn.ModuleList(
            Down(chans[i], chans[i + 1]) for i in range(depth)
        )  # level i+1: (B, w*2^(i+1), H/2^(i+1), W/2^(i+1))
        # ups[i] brings level i+1 back to level i; stored finest-first, applied coarsest-first
        self.ups = nn.ModuleList(Up(chans[i + 1], chans[i]) for i in range(depth))
        self.head = nn.Conv2d(chans[0], num_classes, 1)  # (B, num_classes, H, W): one logit per class and pixel

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = []
        for down in self.downs:  # contracting path
            skips.append(x)
            x = down(x)
        for up, skip in zip(reversed(self.ups), reversed(skips)):  # expanding path, with the skips
            x = up(x, skip)
        return x  # (B, w, H, W)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Conv2d(self.head.in_channels, num_classes, 1)


@register_model(
    "unet",
    description="U-Net (2015): contracting and expanding paths with skip concatenations; segmentation",
    default_input=(1, 256, 256),
    task="segment",
)
def unet(num_classes: int = 2, in_chans: int = 1, width: int = 64, depth: int = 4) -> UNet:
    return UNet(num_classes, in_chans, width=width, depth=depth)
