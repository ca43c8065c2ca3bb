"""Batched augmentation as pure tensor functions, randomness sampled apart from the kernel.

`sample_*` draws parameters from a seeded generator (on the CPU, so runs reproduce on
any device); the kernels are deterministic functions of the batch and the parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_shifts(n: int, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2) integer shifts (dy, dx), each uniform in [-max_shift, max_shift]."""
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)


def translate(x: torch.Tensor, shifts: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Shift each image by (dy, dx) pixels, filling uncovered pixels with `fill`.

    Equivalent to a random crop of the zero-padded image. x: (B, C, H, W); shifts: (B, 2).
    """
    if x.shape[0] == 0:
        return x
    p = int(shifts.abs().max())
    if p == 0:
        return x
    h, w = x.shape[-2:]
    padded = F.pad(x, (p, p, p, p), value=fill)  # (B, C, H+2p, W+2p)
    out = torch.empty_like(x)
    shifts = shifts.to("cpu")
    for dy, dx in torch.unique(shifts, dim=0).tolist():
        idx = torch.nonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).flatten().to(x.device)
        # content moves by (dy, dx): output pixel (i, j) reads input (i - dy, j - dx)
        out[idx] = padded[idx, :, p - dy : p - dy + h, p - dx : p - dx + w]
    return out


def sample_flips(n: int, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(n, generator=generator) < p


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images where mask is True."""
    mask = mask.to(x.device).view(-1, *([1] * (x.ndim - 1)))
    return torch.where(mask, x.flip(-1), x)


class BatchAugment:
    """The training-time augmentation the config asks for, applied to a uint8 or float batch."""

    def __init__(self, translate: int = 0, hflip: bool = False) -> None:
        self.max_shift = translate
        self.hflip = hflip

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.hflip

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if self.hflip:
            x = hflip(x, sample_flips(x.shape[0], generator=generator))
        if self.max_shift > 0:
            x = translate(x, sample_shifts(x.shape[0], self.max_shift, generator))
        return x
