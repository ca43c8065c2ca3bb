"""The MNIST family from canonical IDX files: MNIST, Fashion-MNIST, KMNIST, and the
bundled mnist-mini subset. All share one reader (same file names and format).

Local files are validated by format (magic numbers, counts, shapes), not by checksum:
a re-ordered but pixel-exact copy is accepted. Missing files are downloaded from the
canonical mirrors with SHA-256 checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MIRRORS = [
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
    "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
    "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
    "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
}
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
KMNIST_MIRRORS = ["https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
KMNIST_FILES = {
    "train-images-idx3-ubyte.gz": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
    "train-labels-idx1-ubyte.gz": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
    "t10k-images-idx3-ubyte.gz": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
    "t10k-labels-idx1-ubyte.gz": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
}


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


def read_idx_pair(
    folder: Path,
    prefix: str,
    expected: int | None,
    shape: tuple[int, int] = (28, 28),
    num_classes: int = 10,
    what: str = "MNIST",
) -> Split:
    """Read `<prefix>-images-idx3-ubyte(.gz)` and its labels, checking counts and shapes."""
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte.gz")
    lbl_path = _find(folder, f"{prefix}-labels-idx1-ubyte.gz")
    for p, name in ((img_path, "images"), (lbl_path, "labels")):
        if p is None:
            raise DataError(f"{folder}: missing {prefix}-{name}-idx{3 if name == 'images' else 1}-ubyte.gz")
    assert img_path is not None and lbl_path is not None  # the loop above raised otherwise; narrows for mypy
    images = read_idx(img_path, ndim=3)
    labels = read_idx(lbl_path, ndim=1)
    if tuple(images.shape[1:]) != shape:
        raise DataError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, expected {shape[0]}x{shape[1]}")
    if expected is not None and images.shape[0] != expected:
        raise DataError(
            f"{img_path}: {images.shape[0]} images, expected {expected}; the file is incomplete or not {what}"
        )
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{lbl_path}: {labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}")
    if labels.max(initial=0) >= num_classes:
        raise DataError(f"{lbl_path}: label {int(labels.max())} out of range 0-{num_classes - 1}")
    if background_is_white(images):
        log.warning(
            "%s: pixel polarity is inverted (white background); %s's convention is a black background (0), "
            "so the images are inverted back in memory (the file is not changed)",
            img_path,
            what,
        )
        images = 255 - images
    return Split(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


def _with_val(
    name: str, train: Split, test: Split, cfg: DataConfig, seed: int, source: str, classes: list[str] = MNIST_CLASSES
) -> Dataset:
    keep, held = stratified_split(train.labels, cfg.val_fraction, seed)
    return Dataset(name, list(classes), train.subset(keep), train.subset(held), test, source=source)


def missing_idx_files(folder: Path, files: dict[str, str]) -> list[str]:
    return [n for n in files if _find(folder, n) is None]


def ensure_idx_files(folder: Path, files: dict[str, str], mirrors: list[str], allow_download: bool, what: str) -> None:
    """Download (SHA-256 checked, resumable, atomic) whichever of `files` is not in `folder`."""
    missing = missing_idx_files(folder, files)
    if not missing:
        return
    if not allow_download:
        raise DataError(
            f"{what} not found in {folder} (missing {', '.join(missing)}); set --data-root or CNNKIT_DATA "
            f"to a folder with a {folder.name}/ subfolder"
        )
    for name in missing:
        download([m + name for m in mirrors], folder / name, files[name])


def build_idx_dataset(
    cfg: DataConfig,
    seed: int,
    *,
    name: str,
    what: str,
    classes: list[str],
    files: dict[str, str],
    mirrors: list[str],
    counts: dict[str, int],
) -> Dataset:
    """Any MNIST-format dataset from `<data root>/<name>/`, downloading missing files."""
    folder = data_root(cfg.root) / name
    ensure_idx_files(folder, files, mirrors, cfg.download, what)
    train = read_idx_pair(folder, "train", counts["train"], num_classes=len(classes), what=what)
    test = read_idx_pair(folder, "t10k", counts["t10k"], num_classes=len(classes), what=what)
    return _with_val(name, train, test, cfg, seed, source=str(folder), classes=classes)


def idx_status(name: str, files: dict[str, str]) -> Callable[[str | None], tuple[str, str]]:
    """For `cnnkit datasets`: (folder looked in, status) of an MNIST-format dataset."""

    def find(root: str | None) -> tuple[str, str]:
        folder = data_root(root) / name
        missing = missing_idx_files(folder, files)
        if not missing:
            return str(folder), "present"
        return str(folder), "missing (downloaded on first use)" if len(missing) == len(
            files
        ) else f"incomplete: {len(missing)} files missing"

    return find


@register_dataset(
    "mnist",
    description="MNIST handwritten digits (LeCun, Cortes, Burges; CC BY-SA 3.0)",
    num_classes=10,
    size="60,000 train / 10,000 test, 1x28x28",
    location="<data root>/mnist/ (downloaded when missing)",
    status=idx_status("mnist", MNIST_FILES),
)
def build_mnist(cfg: DataConfig, seed: int) -> Dataset:
    return build_idx_dataset(
        cfg,
        seed,
        name="mnist",
        what="MNIST",
        classes=MNIST_CLASSES,
        files=MNIST_FILES,
        mirrors=MNIST_MIRRORS,
        counts=MNIST_COUNTS,
    )


@register_dataset(
    "fashion-mnist",
    description="Fashion-MNIST clothing images (Zalando Research; MIT licence)",
    num_classes=10,
    size="60,000 train / 10,000 test, 1x28x28",
    location="<data root>/fashion-mnist/ (downloaded when missing)",
    status=idx_status("fashion-mnist", FASHION_FILES),
)
def build_fashion_mnist(cfg: DataConfig, seed: int) -> Dataset:
    return build_idx_dataset(
        cfg,
        seed,
        name="fashion-mnist",
        what="Fashion-MNIST",
        classes=FASHION_CLASSES,
        files=FASHION_FILES,
        mirrors=FASHION_MIRRORS,
        counts=MNIST_COUNTS,
    )


@register_dataset(
    "kmnist",
    description="Kuzushiji-MNIST cursive Japanese characters (ROIS-DS CODH; CC BY-SA 4.0)",
    num_classes=10,
    size="60,000 train / 10,000 test, 1x28x28",
    location="<data root>/kmnist/ (downloaded when missing)",
    status=idx_status("kmnist", KMNIST_FILES),
)
def build_kmnist(cfg: DataConfig, seed: int) -> Dataset:
    return build_idx_dataset(
        cfg,
        seed,
        name="kmnist",
        what="KMNIST",
        classes=KMNIST_CLASSES,
        files=KMNIST_FILES,
        mirrors=KMNIST_MIRRORS,
        counts=MNIST_COUNTS,
    )


def mnist_mini_dir() -> Path:
    return Path(str(resources.files("cnnkit.data") / "assets" / "mnist_mini"))


@register_dataset(
    "mnist-mini",
    description="bundled class-balanced MNIST subset (CC BY-SA 3.0), works offline",
    num_classes=10,
    size="10,000 train / 2,000 test, 1x28x28",
    location="inside the cnnkit package",
    status=lambda root: ("inside the cnnkit package", "present (bundled)"),
)
def build_mnist_mini(cfg: DataConfig, seed: int) -> Dataset:
    folder = mnist_mini_dir()
    train = read_idx_pair(folder, "train", 10000)
    test = read_idx_pair(folder, "t10k", 2000)
    return _with_val("mnist-mini", train, test, cfg, seed, source="bundled (cnnkit/data/assets/mnist_mini)")
