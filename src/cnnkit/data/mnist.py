"""MNIST from its canonical IDX files, and the bundled mnist-mini subset.

Local files are validated by format (magic numbers, counts, shapes), not by checksum:
a re-ordered but pixel-exact copy is accepted. Missing files are downloaded from the
canonical mirrors with SHA-256 checks.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.download import download
from cnnkit.data.idx import read_idx
from cnnkit.data.paths import data_root
from cnnkit.data.types import Dataset, Split, stratified_split
from cnnkit.errors import DataError

log = logging.getLogger("cnnkit")

MNIST_CLASSES = [str(d) for d in range(10)]
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
MNIST_FILES = {  # name -> SHA-256 of the official gzip'd file
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_COUNTS = {"train": 60000, "t10k": 10000}


def background_is_white(images: np.ndarray) -> bool:
    """True when the images use inverted polarity (background 255): MNIST's own convention is
    background 0, foreground 255. Judged by the border pixels, which are background."""
    border = np.concatenate([images[:, 0, :], images[:, -1, :], images[:, :, 0], images[:, :, -1]], axis=1)
    return float(border.mean()) > 127.5


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_idx_pair(folder: Path, prefix: str, expected: int | None, shape=(28, 28)) -> Split:
    """Read `<prefix>-images-idx3-ubyte(.gz)` and its labels, checking counts and shapes."""
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte.gz")
    lbl_path = _find(folder, f"{prefix}-labels-idx1-ubyte.gz")
    for p, name in ((img_path, "images"), (lbl_path, "labels")):
        if p is None:
            raise DataError(f"{folder}: missing {prefix}-{name}-idx{3 if name == 'images' else 1}-ubyte.gz")
    images = read_idx(img_path, ndim=3)
    labels = read_idx(lbl_path, ndim=1)
    if tuple(images.shape[1:]) != shape:
        raise DataError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, expected {shape[0]}x{shape[1]}")
    if expected is not None and images.shape[0] != expected:
        raise DataError(f"{img_path}: {images.shape[0]} images, expected {expected}; the file is incomplete or not MNIST")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{lbl_path}: {labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}")
    if labels.max(initial=0) > 9:
        raise DataError(f"{lbl_path}: label {int(labels.max())} out of range 0-9")
    if background_is_white(images):
        log.warning(
            "%s: pixel polarity is inverted (white background); MNIST's convention is a black background (0), "
            "so the images are inverted back in memory (the file is not changed)", img_path
        )
        images = 255 - images
    return Split(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


def _with_val(name: str, train: Split, test: Split, cfg: DataConfig, seed: int, source: str) -> Dataset:
    keep, held = stratified_split(train.labels, cfg.val_fraction, seed)
    return Dataset(name, MNIST_CLASSES, train.subset(keep), train.subset(held), test, source=source)


def ensure_mnist_files(folder: Path, allow_download: bool) -> None:
    missing = [n for n in MNIST_FILES if _find(folder, n) is None]
    if not missing:
        return
    if not allow_download:
        raise DataError(f"MNIST not found in {folder} (missing {', '.join(missing)}); set --data-root or CNNKIT_DATA to a folder with an mnist/ subfolder")
    for name in missing:
        download([m + name for m in MNIST_MIRRORS], folder / name, MNIST_FILES[name])


@register_dataset(
    "mnist",
    description="MNIST handwritten digits (LeCun, Cortes, Burges; CC BY-SA 3.0)",
    num_classes=10,
    size="60,000 train / 10,000 test, 1x28x28",
    location="<data root>/mnist/ (downloaded when missing)",
)
def build_mnist(cfg: DataConfig, seed: int) -> Dataset:
    root = data_root(cfg.root)
    folder = root / "mnist"
    ensure_mnist_files(folder, cfg.download)
    train = read_idx_pair(folder, "train", MNIST_COUNTS["train"])
    test = read_idx_pair(folder, "t10k", MNIST_COUNTS["t10k"])
    return _with_val("mnist", train, test, cfg, seed, source=str(folder))


def mnist_mini_dir() -> Path:
    return Path(str(resources.files("cnnkit.data") / "assets" / "mnist_mini"))


@register_dataset(
    "mnist-mini",
    description="bundled class-balanced MNIST subset (CC BY-SA 3.0), works offline",
    num_classes=10,
    size="10,000 train / 2,000 test, 1x28x28",
    location="inside the cnnkit package",
)
def build_mnist_mini(cfg: DataConfig, seed: int) -> Dataset:
    folder = mnist_mini_dir()
    train = read_idx_pair(folder, "train", 10000)
    test = read_idx_pair(folder, "t10k", 2000)
    return _with_val("mnist-mini", train, test, cfg, seed, source="bundled (cnnkit/data/assets/mnist_mini)")
