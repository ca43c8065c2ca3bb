"""Segmentation masks: one PNG of class indices per image, decoded into (H, W) int64 arrays.

What a mask file may hold:
    class indices     a grayscale (mode L) or palette (mode P, VOC-style) PNG whose pixel values
                      are class indices 0..K-1; 255 means "ignore" (unlabelled, object borders)
    binary 0 / 255    when every mask of a dataset holds only 0 and 255 (and no classes file says
                      otherwise), 255 is the foreground class 1, not "ignore"
Class names come from `classes.txt` beside the masks (one name per line, line i = index i), else
they are the indices found ("0", "1", ...). A pair is bad when its mask is missing, its size
differs from its image's, or it holds an index the classes do not have: `check_mask` says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.data.images import ImageError, open_image

IGNORE_INDEX = 255  # mask value that no loss or metric counts
CLASSES_FILE = "classes.txt"


def read_mask(path: str | Path) -> np.ndarray:
    """A mask PNG as (H, W) uint8 values (palette PNGs: their indices, not their colours)."""
    img = open_image(path)
    if img.mode == "P":  # VOC-style: the stored indices are the classes
        return np.asarray(img, dtype=np.uint8).copy()
    if img.mode == "1":
        return (np.asarray(img, dtype=np.uint8) * 255).astype(np.uint8)
    if img.mode in ("L", "I", "I;16", "I;16B"):
        arr = np.asarray(img)
        if arr.max(initial=0) > 255:
            raise ImageError(f"{path}: mask values above 255 ({int(arr.max())}); save class indices 0-254 as 8-bit")
        return arr.astype(np.uint8)
    raise ImageError(
        f"{path}: a {img.mode} mask; save masks as 8-bit grayscale or palette PNGs of class indices (255 = ignore)"
    )


def read_classes(folder: Path) -> list[str] | None:
    """Class names from `folder`/classes.txt (blank lines and surrounding spaces dropped), or None."""
    file = folder / CLASSES_FILE
    if not file.is_file():
        return None
    names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2:
        from cnnkit.errors import DataError

        raise DataError(f"{file}: lists {len(names)} class(es); a segmentation needs at least two (one name per line)")
    return names


def is_binary(masks: list[np.ndarray]) -> bool:
    """Every mask holds only 0 and 255 (and at least one holds 255): a 0/255 foreground mask set."""
    values: set[int] = set()
    for m in masks:
        values.update(np.unique(m).tolist())
    return values <= {0, IGNORE_INDEX} and IGNORE_INDEX in values


def to_classes(mask: np.ndarray, binary: bool) -> np.ndarray:
    """Stored values -> class indices (binary sets: 255 -> 1); 255 stays "ignore" otherwise."""
    return (mask > 0).astype(np.uint8) if binary else mask


def check_mask(mask: np.ndarray, image_hw: tuple[int, int], num_classes: int | None) -> str | None:
    """Why this (class-index) mask cannot be used with its image, or None."""
    if tuple(mask.shape) != tuple(image_hw):
        return f"mask is {mask.shape[1]}x{mask.shape[0]} but its image is {image_hw[1]}x{image_hw[0]}"
    if num_classes is not None:
        bad = [v for v in np.unique(mask).tolist() if v >= num_classes and v != IGNORE_INDEX]
        if bad:
            return f"unknown class index {bad[0]} (the classes are 0-{num_classes - 1}; 255 = ignore)"
    return None
