"""CIFAR-10 and CIFAR-100 from their **binary** releases (never the pickled Python version).

The binary format (https://www.cs.toronto.edu/~kriz/cifar.html): fixed-size records of
label byte(s) followed by 3072 pixel bytes, the red, green and blue 32x32 planes in
row-major order. CIFAR-10 has one label byte per record, CIFAR-100 two (coarse, fine).

Each dataset is looked for in `<data root>/<name>/`: the extracted folder
(`cifar-10-batches-bin/` / `cifar-100-binary/`), or the release archive itself, which is
read in place without extracting. When neither is there the archive is downloaded
(SHA-256 checked, resumable, atomic). Local files are validated by format (record size,
counts, label range), not by checksum.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.download import download
from cnnkit.data.paths import data_root
from cnnkit.data.types import Dataset, Split, stratified_split
from cnnkit.errors import DataError

PIXELS = 3 * 32 * 32
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass(frozen=True)
class CifarRelease:
    name: str  # registry name and data-root subfolder
    archive: str  # release file name
    url: str
    sha256: str
    inner: str  # folder inside the archive
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_bytes: int
    names: dict[str, str]  # label set -> class-name file
    counts: tuple[int, int] = (50000, 10000)


CIFAR10 = CifarRelease(
    "cifar10",
    "cifar-10-binary.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    "cifar-10-batches-bin",
    tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    ("test_batch.bin",),
    1,
    {"label": "batches.meta.txt"},
)
CIFAR100 = CifarRelease(
    "cifar100",
    "cifar-100-binary.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
    "cifar-100-binary",
    ("train.bin",),
    ("test.bin",),
    2,
    {"coarse": "coarse_label_names.txt", "fine": "fine_label_names.txt"},
)
NUM_CLASSES = {("cifar10", "label"): 10, ("cifar100", "coarse"): 20, ("cifar100", "fine"): 100}


class _Source:
    """The release's files, from an extracted folder or read straight out of the archive."""

    def __init__(self, rel: CifarRelease, folder: Path):
        self.rel, self.folder = rel, folder
        self.dir = next((d for d in (folder / rel.inner, folder) if (d / rel.test[0]).is_file()), None)
        self.archive = folder / rel.archive
        self._members: dict[str, bytes] | None = None

    @property
    def found(self) -> bool:
        return self.dir is not None or self.archive.is_file()

    @property
    def where(self) -> str:
        return str(self.dir if self.dir is not None else self.archive)

    def read(self, name: str, required: bool = True) -> bytes | None:
        if self.dir is not None:
            p = self.dir / name
            if p.is_file():
                return p.read_bytes()
        elif self._load_archive().get(name) is not None:
            return self._members[name]  # type: ignore[index]  # _load_archive() just set _members
        if required:
            raise DataError(f"{self.where}: {name} is missing; the {self.rel.name} binary release is incomplete")
        return None

    def _load_archive(self) -> dict[str, bytes]:
        if self._members is None:
            wanted = set(self.rel.train + self.rel.test) | set(self.rel.names.values())
            self._members = {}
            try:
                with tarfile.open(self.archive, "r:*") as tar:
                    for m in tar:
                        base = m.name.rsplit("/", 1)[-1]
                        if m.isfile() and base in wanted:
                            f = tar.extractfile(m)
                            self._members[base] = f.read() if f is not None else b""
            except (tarfile.TarError, OSError, EOFError) as e:
                raise DataError(f"{self.archive}: cannot be read ({e}); delete it to download it again") from e
        return self._members


def parse_records(data: bytes, label_bytes: int, label_index: int, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from CIFAR binary records."""
    rec = label_bytes + PIXELS
    if len(data) == 0 or len(data) % rec:
        raise DataError(
            f"{path}: {len(data)} bytes is not a whole number of {rec}-byte CIFAR records; the file is truncated or not CIFAR binary"
        )
    arr = np.frombuffer(data, dtype=np.uint8).reshape(-1, rec)
    return arr[:, label_bytes:].reshape(-1, 3, 32, 32).copy(), arr[:, label_index].astype(np.int64)


def _read_split(src: _Source, files: tuple[str, ...], label_index: int, num_classes: int, expected: int) -> Split:
    parts = [parse_records(src.read(f), src.rel.label_bytes, label_index, f"{src.where}/{f}") for f in files]  # type: ignore[arg-type]  # read(required=True) raises instead of returning None
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if images.shape[0] != expected:
        raise DataError(
            f"{src.where}: {images.shape[0]} images in {', '.join(files)}, expected {expected}; the files are incomplete or not {src.rel.name}"
        )
    if labels.max(initial=0) >= num_classes:
        raise DataError(
            f"{src.where}: label {int(labels.max())} out of range 0-{num_classes - 1} in {', '.join(files)}"
        )
    return Split(torch.from_numpy(images), torch.from_numpy(labels))


def _class_names(src: _Source, label_set: str, n: int) -> list[str]:
    raw = src.read(src.rel.names[label_set], required=False)
    names = [line.strip() for line in raw.decode("utf-8", "replace").splitlines() if line.strip()] if raw else []
    if len(names) == n:
        return names
    return CIFAR10_CLASSES if n == 10 else [str(i) for i in range(n)]


def build_cifar(rel: CifarRelease, cfg: DataConfig, seed: int, label_set: str) -> Dataset:
    folder = data_root(cfg.root) / rel.name
    src = _Source(rel, folder)
    if not src.found:
        if not cfg.download:
            raise DataError(
                f"{rel.name} not found in {folder} (expected {rel.inner}/ or {rel.archive}); set --data-root or CNNKIT_DATA "
                f"to a folder with a {rel.name}/ subfolder"
            )
        download(rel.url, src.archive, rel.sha256)
        src = _Source(rel, folder)
    n = NUM_CLASSES[(rel.name, label_set)]
    label_index = 0 if rel.label_bytes == 1 or label_set == "coarse" else 1
    train = _read_split(src, rel.train, label_index, n, rel.counts[0])
    test = _read_split(src, rel.test, label_index, n, rel.counts[1])
    keep, held = stratified_split(train.labels, cfg.val_fraction, seed)
    name = rel.name if label_set != "coarse" else f"{rel.name}-coarse"
    return Dataset(
        name, _class_names(src, label_set, n), train.subset(keep), train.subset(held), test, source=src.where
    )


def _status(rel: CifarRelease) -> Callable[[str | None], tuple[str, str]]:
    def find(root: str | None) -> tuple[str, str]:
        folder = data_root(root) / rel.name
        src = _Source(rel, folder)
        if src.dir is not None:
            return str(src.dir), "present"
        if src.archive.is_file():
            return str(src.archive), "present (archive)"
        return str(folder), "missing (downloaded on first use)"

    return find


@register_dataset(
    "cifar10",
    description="CIFAR-10 tiny colour photos (Krizhevsky 2009), binary release",
    num_classes=10,
    size="50,000 train / 10,000 test, 3x32x32",
    location="<data root>/cifar10/ (downloaded when missing)",
    status=_status(CIFAR10),
)
def build_cifar10(cfg: DataConfig, seed: int) -> Dataset:
    return build_cifar(CIFAR10, cfg, seed, "label")


@register_dataset(
    "cifar100",
    description="CIFAR-100 (Krizhevsky 2009), binary release; data.cifar100_labels: fine (100) or coarse (20)",
    num_classes=100,
    size="50,000 train / 10,000 test, 3x32x32",
    location="<data root>/cifar100/ (downloaded when missing)",
    status=_status(CIFAR100),
)
def build_cifar100(cfg: DataConfig, seed: int) -> Dataset:
    return build_cifar(CIFAR100, cfg, seed, cfg.cifar100_labels)
