"""Segmentation datasets: image / mask pairs decoded once into a `Dataset` whose labels are masks.

Layouts (`cnnkit train --task segment --data DIR`):
    DIR/images/*.png  + DIR/masks/*.png                 one pool; val (and test) held out by
                                                         data.val_fraction / data.test_fraction
    DIR/{train,val,test}/images/ + .../masks/           the splits as given (val held out of
                                                         train when there is no val/)
A mask pairs with the image of the same stem (`a.jpg` <-> `a.png`); mask values and classes as in
`masks.py`. Bad pairs (no mask, a mask without an image, a size mismatch, an unknown class index,
an unreadable file) are left out and listed in the run's skipped.csv, or are an error with
data.strict. Images are resized to data.image_size (a square side; bilinear) with their masks
(nearest neighbour); without it, to the most common size. Labels are (N, H, W) int64 class
indices, 255 = ignore.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.config import DataConfig
from cnnkit.data.folder import list_image_files
from cnnkit.data.images import ImageError, open_image, to_mode
from cnnkit.data.masks import IGNORE_INDEX, check_mask, is_binary, read_classes, read_mask, to_classes
from cnnkit.data.types import Dataset, SkippedFile, Split
from cnnkit.errors import ConfigError, DataError

SPLIT_NAMES = ("train", "val", "test")
Pair = tuple[Path, Path]


def find_pairs(images_dir: Path, masks_dir: Path, skipped: list[SkippedFile]) -> list[Pair]:
    """(image, mask) pairs matched by file stem; unmatched files of either side go to `skipped`."""
    if not images_dir.is_dir() or not masks_dir.is_dir():
        missing = images_dir if not images_dir.is_dir() else masks_dir
        raise DataError(f"{missing}: not a folder; a segmentation dataset holds images/ and masks/ side by side")
    masks = {p.stem: p for p in list_image_files(masks_dir)}
    pairs, used = [], set()
    for img in list_image_files(images_dir):
        mask = masks.get(img.stem)
        if mask is None:
            skipped.append(SkippedFile(str(img), f"no mask named {img.stem}.* in {masks_dir}"))
            continue
        pairs.append((img, mask))
        used.add(img.stem)
    skipped.extend(
        SkippedFile(str(p), f"a mask without an image in {images_dir}") for s, p in masks.items() if s not in used
    )
    return pairs


def layout(root: Path, skipped: list[SkippedFile]) -> dict[str, list[Pair]]:
    """{split: pairs} of a folder in either layout (see the module docstring)."""
    if not root.is_dir():
        raise DataError(f"--data {root}: not a folder")
    if (root / "train").is_dir():
        return {
            s: find_pairs(root / s / "images", root / s / "masks", skipped) for s in SPLIT_NAMES if (root / s).is_dir()
        }
    if (root / "images").is_dir():
        return {"train": find_pairs(root / "images", root / "masks", skipped)}
    raise DataError(f"{root}: expected images/ and masks/ (or train/ val/ test/ each holding both) for --task segment")


def _decode(pairs: list[Pair], skipped: list[SkippedFile], strict: bool) -> list[tuple[Pair, Image.Image, np.ndarray]]:
    """Each readable pair's image and raw mask values, same size; the others skipped (or an error)."""
    out = []
    for img_path, mask_path in pairs:
        try:
            img, mask = open_image(img_path), read_mask(mask_path)
        except ImageError as e:
            _bad(skipped, strict, str(img_path), str(e))
            continue
        reason = check_mask(mask, (img.height, img.width), None)
        if reason is not None:
            _bad(skipped, strict, str(mask_path), reason)
            continue
        out.append(((img_path, mask_path), img, mask))
    return out


def _bad(skipped: list[SkippedFile], strict: bool, path: str, reason: str) -> None:
    if strict:
        raise DataError(f"{path}: {reason} (data.strict is on; without --strict such pairs are skipped)")
    skipped.append(SkippedFile(path, reason))


def _resize(img: Image.Image, mask: np.ndarray, size: tuple[int, int], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, H, W) uint8 image (bilinear) and (H, W) mask (nearest neighbour, so no new class appears) at `size`."""
    img = to_mode(img, channels)
    h, w = size
    if (img.height, img.width) != (h, w):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
        mask = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST))
    arr = np.asarray(img, dtype=np.uint8)
    return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)), mask


def build_pairs(
    name: str,
    split_pairs: dict[str, list[Pair]],
    cfg: DataConfig,
    seed: int,
    source: str,
    skipped: list[SkippedFile],
    class_names: list[str] | None = None,
) -> Dataset:
    """The Dataset of these pairs (see the module docstring); `class_names` as classes.txt would give them."""
    decoded = {s: _decode(p, skipped, cfg.strict) for s, p in split_pairs.items()}
    every = [m for items in decoded.values() for _, _, m in items]
    if not decoded.get("train"):
        raise DataError(f"{source}: no usable training pairs ({len(skipped)} skipped: see skipped.csv or use --strict)")
    binary = class_names is None or len(class_names) == 2
    binary = binary and is_binary(every)
    if class_names is None:
        top = max((int(v) for m in every for v in np.unique(m).tolist() if v != IGNORE_INDEX), default=0)
        class_names = ["background", "foreground"] if binary else [str(i) for i in range(max(top + 1, 2))]
    sizes = Counter((img.height, img.width) for items in decoded.values() for _, img, _ in items)
    size = (cfg.image_size, cfg.image_size) if cfg.image_size else sizes.most_common(1)[0][0]
    gray = all(img.mode in ("L", "1", "I", "I;16", "LA") for items in decoded.values() for _, img, _ in items)
    channels = cfg.channels or (1 if gray else 3)
    splits = {}
    for s, items in decoded.items():
        images, masks, paths = [], [], []
        for (img_path, mask_path), img, raw in items:
            mask = to_classes(raw, binary)
            reason = check_mask(mask, (img.height, img.width), len(class_names))
            if reason is not None:
                _bad(skipped, cfg.strict, str(mask_path), reason)
                continue
            x, m = _resize(img, mask, size, channels)
            images.append(torch.from_numpy(x.copy()))
            masks.append(torch.from_numpy(m.astype(np.int64)))
            paths.append(str(img_path))
        if images:
            splits[s] = Split(torch.stack(images), torch.stack(masks), paths)
    return _hold_out(name, class_names, splits, cfg, seed, source, skipped)


def _hold_out(
    name: str,
    class_names: list[str],
    splits: dict[str, Split],
    cfg: DataConfig,
    seed: int,
    source: str,
    skipped: list[SkippedFile],
) -> Dataset:
    """val (and with data.test_fraction, test) drawn from train where the folder has none (seeded)."""
    train, val, test = splits["train"], splits.get("val"), splits.get("test")
    if cfg.test_fraction:
        if test is not None:
            raise ConfigError(f"data.test_fraction: {source} already has a test split; drop --test-fraction")
        train, test = _split_off(train, cfg.test_fraction, seed + 1, "data.test_fraction")
    if val is None:
        train, val = _split_off(train, cfg.val_fraction, seed, "data.val_fraction")
    return Dataset(name, class_names, train, val, test, source=source, skipped=skipped)


def _split_off(split: Split, fraction: float, seed: int, key: str) -> tuple[Split, Split]:
    n = len(split)
    k = min(max(round(n * fraction), 1), n - 1) if n >= 2 else 0
    if k == 0:
        raise DataError(f"{key}: {n} usable pair(s) cannot be split; add images or give a val/ folder")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return split.subset(order[k:].sort().values), split.subset(order[:k].sort().values)


def build_segment_folder(cfg: DataConfig, seed: int) -> Dataset:
    """`--task segment --data DIR`: a folder of image / mask pairs."""
    if not cfg.path:
        raise DataError("--task segment needs a folder: --data DIR (images/ and masks/ inside)")
    root = Path(cfg.path).expanduser()
    skipped: list[SkippedFile] = []
    split_pairs = layout(root, skipped)
    classes = read_classes(root) or read_classes(root / "train")
    return build_pairs(root.name, split_pairs, cfg, seed, str(root), skipped, classes)
