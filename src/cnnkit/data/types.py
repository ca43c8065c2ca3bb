"""The in-memory form every dataset is decoded into once: uint8 image tensors plus labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """One split: images (N, C, H, W) uint8 and labels, decoded once.

    Labels are (N,) int64 class indices, or (N, K) float32 multi-hot rows for multi-label
    data (several classes per image; train those with a sigmoid/BCE head), or (N, H, W) int64
    masks for segmentation (a class index per pixel, 255 = ignore; data/segment_folder.py).
    """

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[str] | None = None  # source files, for folder datasets

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.ndim not in (1, 2, 3) or self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"labels shape {tuple(self.labels.shape)} does not match {self.images.shape[0]} images")
        if self.labels.ndim == 3 and self.labels.shape[1:] != self.images.shape[2:]:
            raise ValueError(f"masks {tuple(self.labels.shape)} do not match images {tuple(self.images.shape)}")
        self.labels = self.labels.float() if self.labels.ndim == 2 else self.labels.long()

    @property
    def multi_label(self) -> bool:
        return self.labels.ndim == 2

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        paths = [self.paths[i] for i in index.tolist()] if self.paths is not None else None
        return Split(self.images[index], self.labels[index], paths)

    @property
    def masks(self) -> bool:
        """Segmentation: the labels are (N, H, W) masks."""
        return self.labels.ndim == 3

    def class_counts(self, num_classes: int) -> list[int]:
        """Images per class (multi-label: images carrying each class; masks: pixels of each class, 255 left out)."""
        if self.masks:
            flat = self.labels.flatten()
            return torch.bincount(flat[flat != 255], minlength=num_classes)[:num_classes].tolist()
        if self.multi_label:
            return self.labels.sum(0).round().long().tolist()
        return torch.bincount(self.labels, minlength=num_classes).tolist()


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class Dataset:
    """A dataset ready to train on: splits, class names, and the statistics to normalise with."""

    name: str
    class_names: list[str]
    train: Split
    val: Split
    test: Split | None
    source: str = ""  # where it was read from, for the report
    skipped: list[SkippedFile] = field(default_factory=list)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.mean:
            self.mean, self.std = channel_stats(self.train.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def multi_label(self) -> bool:
        return self.train.multi_label

    @property
    def masks(self) -> bool:
        """Segmentation: the labels are (N, H, W) masks."""
        return self.train.masks

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[2:])  # type: ignore[return-value]  # images are 4-D: (H, W)

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}: use train, val or test")
        s: Split | None = getattr(self, name)
        if s is None:
            from cnnkit.errors import DataError

            raise DataError(f"dataset {self.name!r} has no {name} split; use --split val")
        return s


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], computed in float64 chunks."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    n = 0
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
        s += x.sum(1)
        s2 += (x * x).sum(1)
        n += x.shape[1]
    mean = s / max(n, 1)
    std = (s2 / max(n, 1) - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def strata(labels: torch.Tensor) -> torch.Tensor:
    """(N,) group of each example for stratification: its class, or for multi-hot rows the
    rarest class it carries (-1 for a row with none), so every class is spread over splits."""
    if labels.ndim == 1:
        return labels
    pos = labels > 0.5
    counts = pos.sum(0).float()
    rarity = torch.where(pos, counts.expand_as(pos), torch.full_like(pos, float("inf"), dtype=torch.float32))
    group = rarity.argmin(1)
    return torch.where(pos.any(1), group, torch.full_like(group, -1))


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int, key: str = "data.val_fraction"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out): `fraction` of each class held out (at least one when a class has two).

    Seeded: the same labels and seed give the same split. Multi-hot labels are stratified by
    each row's rarest class (`strata`).
    """
    if not 0.0 < fraction < 1.0:
        from cnnkit.errors import ConfigError

        raise ConfigError(f"{key} must be between 0 and 1 (exclusive), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    groups = strata(labels)
    keep, held = [], []
    for c in torch.unique(groups).tolist():
        idx = torch.nonzero(groups == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = round(len(idx) * fraction)
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.append(idx[:k])
        keep.append(idx[k:])
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(held)).values
