"""Sample grids: generated images (B, C, H, W) in [-1, 1] as one PNG, written atomically."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """One image (C, H, W) in [-1, 1] -> uint8 (C, H, W)."""
    return ((image.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def grid_image(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] -> uint8 (3 or 1, rows*(H+2)+2, cols*(W+2)+2): a grid with 2 px borders."""
    from torchvision.utils import make_grid

    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    g: torch.Tensor = make_grid(
        ((images.detach().float().cpu() + 1) / 2).clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0
    )
    if images.shape[1] == 1:
        g = g[:1]  # make_grid repeats a grey channel three times
    return (g * 255).round().to(torch.uint8)


def save_png(image: torch.Tensor, path: Path) -> None:
    """uint8 (C, H, W) with C 1 or 3 -> a PNG at `path` (atomic)."""
    from PIL import Image

    from cnnkit.rundir import atomic_write

    arr = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    save_png(grid_image(images, nrow), path)
