"""Image-folder datasets: `root/<class>/*.jpg`, or `root/{train,val,test}/<class>/...`.

Class names are the folder names, sorted. Hidden files and files without an image
extension are ignored. Every image is decoded once, through the one loader, into a
uint8 tensor at the training size. A file that cannot be read is skipped with a warning
naming it and recorded (`Dataset.skipped`); `strict` turns that into an error.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.images import ImageError, is_image_file, load_image
from cnnkit.data.types import Dataset, SkippedFile, Split, stratified_split
from cnnkit.errors import DataError

log = logging.getLogger("cnnkit")

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_SIZE = 64


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def scan_class_folders(folder: Path) -> dict[str, list[Path]]:
    """{class name: image files (recursive, sorted)} without decoding anything."""
    classes = {}
    for d in _visible_dirs(folder):
        files = []
        for dirpath, dirnames, filenames in os.walk(d):
            dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
            files.extend(Path(dirpath) / f for f in sorted(filenames) if is_image_file(f))
        classes[d.name] = files
    if not classes:
        raise DataError(f"{folder}: no class folders found; expected {folder}/<class name>/<images>")
    return classes


def decode_split(
    files: dict[str, list[Path]], class_names: list[str], channels: int, size: tuple[int, int], strict: bool, skipped: list[SkippedFile]
) -> Split:
    images, labels, paths = [], [], []
    for label, name in enumerate(class_names):
        n_ok = 0
        for path in files.get(name, []):
            try:
                images.append(load_image(path, channels, size))
            except ImageError as e:
                if strict:
                    raise DataError(f"{e} (remove the file, or train without --strict to skip bad files)") from e
                log.warning("skipping %s", e)
                skipped.append(SkippedFile(str(path), str(e).removeprefix(f"{path}: ")))
                continue
            labels.append(label)
            paths.append(str(path))
            n_ok += 1
        if files.get(name) is not None and n_ok == 0:
            raise DataError(f"class folder {name!r} has no readable image (looked in the folder for {name!r}); add images or remove the folder")
    if not images:
        arr = np.zeros((0, channels, *size), dtype=np.uint8)
    else:
        arr = np.stack(images)
    return Split(torch.from_numpy(arr), torch.tensor(labels, dtype=torch.int64), paths)


@register_dataset(
    "folder",
    description="your images: class folders, optionally inside train/ val/ test/",
    num_classes=None,
    size="any; resized to data.image_size (default 64)",
    location="--data PATH",
)
def build_folder(cfg: DataConfig, seed: int) -> Dataset:
    if not cfg.path:
        raise DataError("dataset 'folder' needs a path: --data PATH (a folder of class folders)")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"--data {root}: not a folder")
    channels = cfg.channels or 3
    size = (cfg.image_size or DEFAULT_SIZE,) * 2
    subdirs = {p.name for p in _visible_dirs(root)}
    has_splits = "train" in subdirs
    scans = {s: scan_class_folders(root / s) for s in SPLIT_NAMES if s in subdirs} if has_splits else {"train": scan_class_folders(root)}
    class_names = sorted(scans["train"])
    for split, scan in scans.items():
        extra = sorted(set(scan) - set(class_names))
        if extra:
            raise DataError(f"{root / split}: classes {extra} do not appear in {root / 'train'}; every class needs training images")
    skipped: list[SkippedFile] = []
    splits = {s: decode_split(scan, class_names, channels, size, cfg.strict, skipped) for s, scan in scans.items()}
    train = splits["train"]
    if "val" in splits:
        val = splits["val"]
    else:
        keep, held = stratified_split(train.labels, cfg.val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    return Dataset(root.name, class_names, train, val, splits.get("test"), source=str(root), skipped=skipped)
