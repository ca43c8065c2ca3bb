"""Image-folder datasets: `root/<class>/*.jpg`, or `root/{train,val,test}/<class>/...`.

Class names are the folder names, sorted. Hidden files and files without an image
extension are ignored. The tree is listed without opening an image and the listing is
cached (`scan.py`). Every image is then decoded once, through the one loader, into a uint8
tensor at the training size, memory-mapped from the on-disk cache (`cache.py`) on later
runs; unless the decoded images would exceed data.cache_max_gb (or data.stream is true):
then the splits stay file lists that training streams through DataLoader workers
(`stream.py`). A file that cannot be read is skipped with a warning naming it and recorded
(`Dataset.skipped`); `strict` turns that into an error. `--data labels.csv` (a manifest
file rather than a folder) is read by `manifest.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.cache import FilePaths, decode_files, default_cache_dir
from cnnkit.data.scan import TreeScan, scan_tree, walk
from cnnkit.data.stream import FileImages, is_streamed, sample_stats, should_stream, subset
from cnnkit.data.types import Dataset, SkippedFile, Split, stratified_split
from cnnkit.errors import ConfigError, DataError

log = logging.getLogger("cnnkit")

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_SIZE = 64


def list_image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursive, sorted, hidden entries skipped), without opening any."""
    return [Path(p) for p in walk(Path(folder)).image_files()]


def class_files(tree: TreeScan, rel: str = "") -> dict[str, list[str]]:
    """{class name: image files (recursive, sorted)} of the class folders in folder `rel` of the scan."""
    classes = {name: tree.image_files(f"{rel}/{name}" if rel else name) for name in tree.subdirs(rel)}
    if not classes:
        folder = tree.root / rel if rel else tree.root
        raise DataError(f"{folder}: no class folders found; expected {folder}/<class name>/<images>")
    return classes


def decode_labelled(
    files: FilePaths,
    labels: list[Any],
    channels: int,
    size: tuple[int, int],
    cfg: DataConfig,
    skipped: list[SkippedFile],
    source: str,
    stream: bool = False,
) -> tuple[torch.Tensor | FileImages, list[Any], list[str]]:
    """Decode `files` once (through the cache when data.cache is on): (images, labels kept, paths kept).
    With `stream`, nothing is decoded: the images are the files (`FileImages`), all kept."""
    if stream:
        return (
            FileImages(
                files,
                channels,
                size,
                workers=cfg.workers,
                strict=cfg.strict,
                skipped=skipped,
                interpolation=cfg.interpolation,
            ),
            list(labels),
            [str(f) for f in files],
        )
    cache_dir = default_cache_dir(cfg.cache_dir) if cfg.cache else None
    dec = decode_files(
        files, channels, size, strict=cfg.strict, cache_dir=cache_dir, source=source, interpolation=cfg.interpolation
    )
    skipped.extend(dec.skipped)
    return dec.images, [labels[i] for i in dec.kept], [str(files[i]) for i in dec.kept]


def decode_split(
    files: Mapping[str, FilePaths],
    class_names: list[str],
    channels: int,
    size: tuple[int, int],
    cfg: DataConfig,
    skipped: list[SkippedFile],
    source: str,
    stream: bool = False,
) -> Split:
    flat = [(p, label) for label, name in enumerate(class_names) for p in files.get(name, [])]
    images, labels, paths = decode_labelled(
        [p for p, _ in flat], [lab for _, lab in flat], channels, size, cfg, skipped, source, stream
    )
    present = set(labels)
    for label, name in enumerate(class_names):
        if name in files and label not in present:
            raise DataError(
                f"class folder {name!r} has no readable image (looked in the folder for {name!r}); add images or remove the folder"
            )
    return Split(images, torch.tensor(labels, dtype=torch.int64), paths)  # type: ignore[arg-type]  # a FileImages stands in for the tensor (stream.py)


def decide_streaming(cfg: DataConfig, num_images: int, channels: int, size: tuple[int, int], source: Path) -> bool:
    """should_stream, with the choice logged and the options that cannot stream refused."""
    if not should_stream(cfg, num_images, channels, size):
        return False
    if cfg.balance == "oversample":
        raise ConfigError(
            "data.balance: oversample repeats images in memory and cannot stream; use data.balance: sampler (the same balance, drawn each epoch)"
        )
    gb = num_images * channels * size[0] * size[1] / 1e9
    why = (
        "data.stream is true"
        if cfg.stream is True
        else f"{gb:.1f} GB decoded would exceed data.cache_max_gb={cfg.cache_max_gb:g}"
    )
    log.info(
        "%s: streaming %d images from their files (%s), decoded in %d DataLoader workers",
        source,
        num_images,
        why,
        cfg.workers,
    )
    return True


def finish(
    name: str,
    class_names: list[str],
    splits: dict[str, Split],
    cfg: DataConfig,
    seed: int,
    source: str,
    skipped: list[SkippedFile],
) -> Dataset:
    """The Dataset of these splits, val held out of train when there is none (folders and manifests)."""
    if len(class_names) < 2:
        found = f"only one class, {class_names[0]!r}" if class_names else "no class"
        where = "folder" if Path(source).is_dir() else "manifest"
        raise DataError(
            f"{source}: {found}; a classifier needs at least two classes "
            + (
                "(one subfolder of images per class, e.g. cats/ and dogs/)"
                if where == "folder"
                else "(a label column with two or more values)"
            )
        )
    train, test = splits["train"], splits.get("test")
    if cfg.test_fraction:  # held out first, with its own seed, so the validation split never overlaps it
        if test is not None:
            raise ConfigError(f"data.test_fraction: {source} already has a test split; drop --test-fraction")
        keep, held = stratified_split(train.labels, cfg.test_fraction, seed + 1, key="data.test_fraction")
        train, test = subset(train, keep), subset(train, held)
    if "val" in splits:
        val = splits["val"]
    else:
        keep, held = stratified_split(train.labels, cfg.val_fraction, seed)
        train, val = subset(train, keep), subset(train, held)
    stats = sample_stats(train.images, seed) if is_streamed(train) else ((), ())  # type: ignore[arg-type]  # is_streamed: images is a FileImages
    return Dataset(name, class_names, train, val, test, source=source, skipped=skipped, mean=stats[0], std=stats[1])


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
    tree = scan_tree(root, default_cache_dir(cfg.cache_dir) if cfg.cache else None)
    skipped: list[SkippedFile] = list(tree.skipped)
    has_splits = "train" in tree.subdirs()
    scans = (
        {s: class_files(tree, s) for s in SPLIT_NAMES if s in tree.subdirs()}
        if has_splits
        else {"train": class_files(tree)}
    )
    class_names = sorted(scans["train"])
    for split, scan in scans.items():
        extra = sorted(set(scan) - set(class_names))
        if extra:
            raise DataError(
                f"{root / split}: classes {extra} do not appear in {root / 'train'}; every class needs training images"
            )
    total = sum(len(files) for scan in scans.values() for files in scan.values())
    stream = decide_streaming(cfg, total, channels, size, root)
    splits = {
        s: decode_split(scan, class_names, channels, size, cfg, skipped, str(root / s if has_splits else root), stream)
        for s, scan in scans.items()
    }
    return finish(root.name, class_names, splits, cfg, seed, str(root), skipped)
