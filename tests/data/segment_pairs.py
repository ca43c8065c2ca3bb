"""Tiny segmentation folders for tests: images with a bright square (class 1) and, with three
classes, a mid-grey bar (class 2) on a dark noisy background (class 0), masks as PNG indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def draw_pair(rng: np.random.Generator, size: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((size, size), np.uint8)
    img = rng.integers(0, 50, (size, size)).astype(np.uint8)
    side = size // 3
    y, x = rng.integers(1, size - side - 1, 2)
    mask[y : y + side, x : x + side] = 1
    if classes > 2:
        r = int(rng.integers(0, size - 3))
        mask[r : r + 3, :] = np.where(mask[r : r + 3, :] == 0, 2, mask[r : r + 3, :])
    img[mask == 1] = 220
    img[mask == 2] = 130
    return img, mask


def make_pairs(
    root: Path, n: int = 8, size: int = 32, classes: int = 2, seed: int = 0, binary: bool = False, mode: str = "L"
) -> Path:
    """root/images/NN.png and root/masks/NN.png; `binary`: masks stored as 0 / 255."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, mask = draw_pair(rng, size, classes)
        Image.fromarray(img).convert(mode).save(root / "images" / f"{i:02d}.png")
        Image.fromarray(mask * 255 if binary else mask).save(root / "masks" / f"{i:02d}.png")
    return root
