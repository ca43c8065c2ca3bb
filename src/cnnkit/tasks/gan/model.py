"""The DCGAN pair (Radford et al. 2016, section 3): a generator of transposed convolutions with batch norm
and ReLU ending in tanh, a discriminator of strided convolutions with LeakyReLU(0.2) and batch norm (none on
its input layer), no pooling, no fully connected layers; weights from N(0, 0.02), batch-norm scales from
N(1, 0.02). Sizes: a side of 4 or 7 doubled k times (8, 16, 28, 32, 64 px); 1 or 3 channels.
Class-conditional (num_classes > 0, Mirza & Osindero 2014): G reads z joined to the label's one-hot vector,
D reads the image with the one-hot vector as num_classes extra constant channels. Optional: spectral norm on
every convolution of D (Miyato et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
    """z (B, latent) [and labels (B,) when conditional] -> image (B, C, side, side) in [-1, 1]."""

    def __init__(self, latent: int = 100, channels: int = 1, side: int = 32, width: int = 64, num_classes: int = 0):
        super().__init__()
        start, k = plan_sizes(side)
        self.latent, self.channels, self.side, self.width = latent, channels, side, width
        self.num_classes = num_classes
        self.class_names: list[str] = []  # a conditional run's classes (set when loaded from a checkpoint)
        ch = width * 2 ** (k - 1)  # widest at the start: 4w for 32 px, 8w for 64 px, 2w for 28 px
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent + num_classes, ch, start, 1, 0, bias=False),  # (B, ch, start, start)
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

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = with_labels(z, labels, self.num_classes)
        out: torch.Tensor = self.net(z.view(z.shape[0], self.latent + self.num_classes, 1, 1))
        return out


def with_labels(x: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """x (B, D) or (B, C, H, W) with the labels' one-hot vectors joined along dim 1 (as constant maps for
    images); x itself when the network is not conditional."""
    if not num_classes:
        return x
    if labels is None:
        raise ValueError("a class-conditional network needs the labels of its batch")
    hot = F.one_hot(labels.long(), num_classes).to(x.dtype)  # (B, K)
    if x.ndim == 4:
        hot = hot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, hot], 1)


class Discriminator(nn.Module):
    """image (B, C, side, side) in [-1, 1] [and labels (B,) when conditional] -> real-vs-fake logit (B,)."""

    def __init__(self, channels: int = 1, side: int = 32, width: int = 64, num_classes: int = 0):
        super().__init__()
        start, k = plan_sizes(side)
        self.channels, self.side, self.width, self.num_classes = channels, side, width, num_classes
        layers: list[nn.Module] = [
            nn.Conv2d(channels + num_classes, width, 4, 2, 1, bias=False),
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

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out: torch.Tensor = self.net(with_labels(x, labels, self.num_classes))
        return out.flatten()


def dcgan_init(module: nn.Module) -> None:
    """The paper's init, for `model.apply`: conv weights ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_pair(
    latent: int, channels: int, side: int, width: int, num_classes: int = 0, spectral_norm: bool = False
) -> tuple[Generator, Discriminator]:
    """A generator and discriminator with the paper's init (draws from torch's global RNG: seed first);
    `spectral_norm`: D's convolutions spectrally normalised (after the init)."""
    g, d = Generator(latent, channels, side, width, num_classes), Discriminator(channels, side, width, num_classes)
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    if spectral_norm:
        from torch.nn.utils.parametrizations import spectral_norm as sn

        for i, m in enumerate(d.net):
            if isinstance(m, nn.Conv2d):
                d.net[i] = sn(m)
    return g, d
