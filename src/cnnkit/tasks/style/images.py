"""Pictures in and out: any image cnnkit's loader reads, sized for the network, written atomically.

Images are float tensors (1, 3, H, W) in [0, 1]. The optimisation runs at `working_size`: the content
image's longer side becomes --size (its aspect kept), unless that makes the shorter side less than MIN_SIDE:
then the shorter side is MIN_SIDE, so that a tiny image still gives the deep layers a few positions. The result is resized back to the content
image's own size before it is written.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIDE = 32  # the shorter side while optimising: /16 layers still see a 2x2 grid


def load_rgb(path: str | Path) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] at the file's own size; grey, palette, RGBA... converted (data.images)."""
    from cnnkit.data.images import load_image

    arr = load_image(path, channels=3)  # uint8 (3, H, W); ImageError naming the file when unreadable
    return torch.from_numpy(arr).float().div(255).unsqueeze(0)


def hw(image: torch.Tensor) -> tuple[int, int]:
    """(H, W) of an image (..., H, W)."""
    return int(image.shape[-2]), int(image.shape[-1])


def working_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the longer side `size` and the aspect kept; a shorter side under MIN_SIDE is raised to it."""
    scale = size / max(height, width)
    if min(height, width) * scale < MIN_SIDE:
        scale = MIN_SIDE / min(height, width)
    return max(MIN_SIDE, round(height * scale)), max(MIN_SIDE, round(width * scale))


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *size); antialiased when shrinking, so a huge photo does not alias."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    shrinking = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=shrinking).clamp(0, 1)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> uint8 (H, W, 3)."""
    return (image[0].detach().float().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def save_png(image: torch.Tensor | np.ndarray, path: str | Path) -> None:
    """Write (1, 3, H, W) in [0, 1] or uint8 (H, W, 3) atomically (a failed write leaves no file): PNG, or the
    format the suffix names (out.jpg: JPEG)."""
    from PIL import Image

    from cnnkit.rundir import atomic_write

    arr = to_uint8(image) if isinstance(image, torch.Tensor) else image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=Image.registered_extensions().get(Path(path).suffix.lower(), "PNG"))
    atomic_write(path, lambda f: f.write(buf.getvalue()))


def strip(frames: list[torch.Tensor], height: int = 128) -> np.ndarray:
    """Frames (1, 3, H, W) side by side at `height` px (at most their own), 4 px white gaps: uint8 (h, W, 3)."""
    h = min(height, frames[0].shape[-2])
    tiles = []
    for f in frames:
        w = max(1, round(f.shape[-1] * h / f.shape[-2]))
        tiles.append(to_uint8(resize(f, (h, w))))
        tiles.append(np.full((h, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)
