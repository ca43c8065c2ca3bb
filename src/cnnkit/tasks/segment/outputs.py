"""Pictures of masks: a colour per class (the PASCAL VOC colour map, class 0 black, 255 = ignore
white), overlays on the image, and the run's sample sheet (image | truth | prediction | errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.tasks.segment.task import IGNORE_INDEX


def palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 colours: the VOC colour map (bits of the index spread over R, G, B); 255 white."""
    out = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out[i] = (r, g, b)
    if n > IGNORE_INDEX:
        out[IGNORE_INDEX] = (255, 255, 255)
    return out


def colorize(mask: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 colours."""
    out: np.ndarray = palette()[mask.astype(np.int64).clip(0, 255)]
    return out


def to_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 (1 or 3 channels) -> (H, W, 3)."""
    return np.repeat(image[0][..., None], 3, axis=2) if image.shape[0] == 1 else image.transpose(1, 2, 0)


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (C, H, W) uint8 with every class but 0 tinted in its colour."""
    rgb = to_rgb(image).astype(np.float32)
    tint = colorize(mask).astype(np.float32)
    on = ((mask != 0) & (mask != IGNORE_INDEX))[..., None]
    return np.where(on, (1 - alpha) * rgb + alpha * tint, rgb).round().astype(np.uint8)


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Wrong pixels red, right ones black, unlabelled ones grey."""
    out = np.zeros((*truth.shape, 3), np.uint8)
    out[(pred != truth) & (truth != IGNORE_INDEX)] = (230, 40, 40)
    out[truth == IGNORE_INDEX] = (128, 128, 128)
    return out


def sample_sheet(images: np.ndarray, truths: np.ndarray, preds: np.ndarray, gap: int = 4) -> np.ndarray:
    """One row per image: image | truth | prediction | errors, as one (H', W', 3) uint8 picture."""
    rows = []
    for img, t, p in zip(images, truths, preds):
        tiles = [to_rgb(img), colorize(t), colorize(p), error_map(p, t)]
        h = tiles[0].shape[0]
        sep = np.full((h, gap, 3), 255, np.uint8)
        rows.append(np.concatenate([x for tile in tiles for x in (tile, sep)][:-1], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def save_png(rgb_or_mask: np.ndarray, path: Path, *, palette_mask: bool = False) -> None:
    """An RGB array as PNG, or with `palette_mask` a class-index mask as a palette PNG (indices kept)."""
    from PIL import Image

    from cnnkit.rundir import atomic_write

    if palette_mask:
        img = Image.fromarray(rgb_or_mask.astype(np.uint8), mode="P")
        img.putpalette(palette().flatten().tolist())
    else:
        img = Image.fromarray(rgb_or_mask)
    atomic_write(path, lambda f: img.save(f, format="PNG"))
