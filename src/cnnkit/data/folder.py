"""Image-folder datasets: `root/<class>/*.jpg`, or `root/{train,val,test}/<class>/...`.

Class names are the folder names, sorted. Hidden files and files without an image
extension are ignored. Every image is decoded once, through the one loader, into a
uint8 tensor at the training size, memory-mapped from the on-disk cache (`cache.py`) on
later runs. A file that cannot be read is skipped with a warning naming it and recorded
(`Dataset.skipped`); `strict` turns that into an error. `--data labels.csv` (a manifest
file rather than a folder) is read by `manifest.py`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.cache import decode_files, default_cache_dir
from cnnkit.data.images import is_image_file
from cnnkit.data.types import Dataset, SkippedFile, Split, stratified_split
from cnnkit.errors import DataError

log = logging.getLogger("cnnkit")

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_SIZE = 64


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def list_image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted, hidden entries skipped), without opening any."""
    found: list[Path] = []
    stack = [str(folder)]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            log.warning("skipping unreadable folder %s (%s)", d, e)
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                subdirs.append(e.path)
            elif is_image_file(e.name):
                found.append(Path(e.path))
        stack.extend(reversed(subdirs))
    return sorted(found)


def scan_class_folders(folder: Path) -> dict[str, list[Path]]:
    """{class name: image files (recursive, sorted)} without decoding anything."""
    classes = {d.name: list_image_files(d) for d in _visible_dirs(folder)}
    if not classes:
        raise DataError(f"{folder}: no class folders found; expected {folder}/<class name>/<images>")
    return classes


def decode_labelled(
    files: list[Path], labels: list, channels: int, size: tuple[int, int], cfg: DataConfig, skipped: list[SkippedFile], source: str
) -> tuple[torch.Tensor, list, list[str]]:
    """Decode `files` once (through the cache when data.cache is on): (images, labels kept, paths kept)."""
    cache_dir = default_cache_dir(cfg.cache_dir) if cfg.cache else None
    dec = decode_files(files, channels, size, strict=cfg.strict, cache_dir=cache_dir, source=source)
    skipped.extend(dec.skipped)
    return dec.images, [labels[i] for i in dec.kept], [str(files[i]) for i in dec.kept]


def decode_split(
    files: dict[str, list[Path]], class_names: list[str], channels: int, size: tuple[int, int], cfg: DataConfig, skipped: list[SkippedFile], source: str
) -> Split:
    flat = [(p, label) for label, name in enumerate(class_names) for p in files.get(name, [])]
    images, labels, paths = decode_labelled([p for p, _ in flat], [lab for _, lab in flat], channels, size, cfg, skipped, source)
    present = set(labels)
    for label, name in enumerate(class_names):
        if name in files and label not in present:
            raise DataError(f"class folder {name!r} has no readable image (looked in the folder for {name!r}); add images or remove the folder")
    return Split(images, torch.tensor(labels, dtype=torch.int64), paths)


@register_dataset(
    "folder",
    description="your images: class folders, optionally inside train/ val/ test/",
    num_classes=None,
    size="any; resized to data.image_size (default 64)",
    location="--data PATH",
)
def build_folder(cfg: DataConfig, seed: int) -> Dataset:
    from cnnkit.data.manifest import MANIFEST_SUFFIXES, build_manifest

    if not cfg.path:
        raise DataError("dataset 'folder' needs a path: --data PATH (a folder of class folders)")
    root = Path(cfg.path).expanduser()
    if root.is_file() and root.suffix.lower() in MANIFEST_SUFFIXES:
        return build_manifest(cfg, seed)
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
    splits = {s: decode_split(scan, class_names, channels, size, cfg, skipped, str(root / s if has_splits else root)) for s, scan in scans.items()}
    train = splits["train"]
    if "val" in splits:
        val = splits["val"]
    else:
        keep, held = stratified_split(train.labels, cfg.val_fraction, seed)
        train, val = train.subset(keep), train.subset(held)
    return Dataset(root.name, class_names, train, val, splits.get("test"), source=str(root), skipped=skipped)
