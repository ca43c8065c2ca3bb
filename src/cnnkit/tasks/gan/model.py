"""The DCGAN pair (Radford et al. 2016, section 3): a generator of transposed convolutions with batch norm
and ReLU ending in tanh, a discriminator of strided convolutions with LeakyReLU(0.2) and batch norm (none on
its input layer), no pooling, no fully connected layers; weights from N(0, 0.02), batch-norm scales from
N(1, 0.02). Sizes: a side of 4 or 7 doubled k times (8, 16, 28, 32, 64 px); 1 or 3 channels."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.errors import ConfigError


def plan_sizes(side: int) -> tuple[int, int]:
    """(start side, doublings): the generator starts from a 4x4 (or 7x7 for 28 px) map and doubles it."""
    for start in (4, 7):
        k = 0
        s = side
        while s > start and s % 2 == 0:
            s //= 2
            k += 1
        if s == start and k >= 1:
            return start, k
    raise ConfigError(
        f"data: a DCGAN generates 4 or 7 px doubled 1-5 times (8, 14, 16, 28, 32, 64 px), got {side} px; "
        "use a dataset of such a size (folders: --image-size 32 or 64)"
    )


class Generator(nn.Module):
    """z (B, latent) -> image (B, C, side, side) in [-1, 1]."""

    def __init__(self, latent: int = 100, channels: int = 1, side: int = 32, width: int = 64):
        super().__init__()
        start, k = plan_sizes(side)
        self.latent, self.channels, self.side, self.width = latent, channels, side, width
        ch = width * 2 ** (k - 1)  # widest at the start: 4w for 32 px, 8w for 64 px, 2w for 28 px
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent, ch, start, 1, 0, bias=False),  # (B, ch, start, start)
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),  # (B, ch/2, 2s, 2s)
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]  # (B, C, side, side)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(z.view(z.shape[0], self.latent, 1, 1))
        return out


class Discriminator(nn.Module):
    """image (B, C, side, side) in [-1, 1] -> real-vs-fake logit (B,)."""

    def __init__(self, channels: int = 1, side: int = 32, width: int = 64):
        super().__init__()
        start, k = plan_sizes(side)
        self.channels, self.side, self.width = channels, side, width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, width, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
        ]  # (B, w, side/2, side/2)
        ch = width
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),  # (B, 2ch, s/2, s/2)
                nn.BatchNorm2d(ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, start, 1, 0, bias=False))  # (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out.flatten()


def dcgan_init(module: nn.Module) -> None:
    """The paper's init, for `model.apply`: conv weights ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_pair(latent: int, channels: int, side: int, width: int) -> tuple[Generator, Discriminator]:
    """A generator and discriminator with the paper's init (draws from torch's global RNG: seed first)."""
    g, d = Generator(latent, channels, side, width), Discriminator(channels, side, width)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    return g, d
