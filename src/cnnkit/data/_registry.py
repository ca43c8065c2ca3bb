"""The dataset registry: one name per dataset, each a builder from a DataConfig."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

from cnnkit.config import DataConfig
from cnnkit.data.types import Dataset, Split
from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    builder: Callable[[DataConfig, int], Dataset]
    description: str
    num_classes: int | None
    size: str  # e.g. "10,000 train / 2,000 test, 1x28x28"
    location: str  # where it is looked for
    status: Callable[[str | None], tuple[str, str]] | None = None  # data root -> (where it looks, "present" / ...)

    def find(self, root: str | None = None) -> tuple[str, str]:
        """(where this dataset is looked for under `root`, whether it is there), reading no image."""
        return self.status(root) if self.status is not None else (self.location, "-")


_DATASETS: dict[str, DatasetInfo] = {}

DatasetBuilder = Callable[[DataConfig, int], Dataset]
StatusFn = Callable[[str | None], tuple[str, str]]
B = TypeVar("B", bound=DatasetBuilder)


def register_dataset(
    name: str, *, description: str, num_classes: int | None, size: str, location: str, status: StatusFn | None = None
) -> Callable[[B], B]:
    def wrap(fn: B) -> B:
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        _DATASETS[name] = DatasetInfo(name, fn, description, num_classes, size, location, status)
        return fn

    return wrap


def list_datasets() -> list[DatasetInfo]:
    _ensure_builtins()
    return [_DATASETS[k] for k in sorted(_DATASETS)]


def build_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    """Load (decode once) the dataset that `cfg` names. `seed` drives any split it has to make."""
    _ensure_builtins()
    if cfg.dataset not in _DATASETS:
        import difflib

        close = difflib.get_close_matches(cfg.dataset, list(_DATASETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"data.dataset: unknown dataset {cfg.dataset!r}.{hint} Known: {', '.join(sorted(_DATASETS))}."
        )
    if cfg.path is not None and cfg.dataset not in PATH_DATASETS:
        raise ConfigError(
            f"data.path is only used with data.dataset 'folder' or 'manifest' (got dataset {cfg.dataset!r}); use --data PATH"
        )
    if cfg.channels not in (None, 1, 3):
        raise ConfigError(f"data.channels must be 1 or 3, got {cfg.channels}")
    if cfg.subset_per_class is not None and cfg.subset_per_class < 1:
        raise ConfigError(f"data.subset_per_class must be at least 1, got {cfg.subset_per_class}")
    if cfg.test_fraction and cfg.dataset not in PATH_DATASETS:
        raise ConfigError(
            f"data.test_fraction holds out a test split from a folder or manifest; {cfg.dataset!r} has its own test split, drop --test-fraction"
        )
    data = _build(cfg, seed)
    if cfg.channels is not None and cfg.channels != data.channels:
        data = convert_channels(data, cfg.channels)
    if cfg.subset_per_class is not None:
        data.train = data.train.subset(subset_per_class(data.train.labels, cfg.subset_per_class, seed))
    if cfg.balance == "oversample":
        from cnnkit.data.balance import oversample_indices

        data.train = data.train.subset(oversample_indices(data.train.labels, seed))
    return data


def _build(cfg: DataConfig, seed: int) -> Dataset:
    """The builder's dataset; data.task segment reads a folder as image / mask pairs, and the task
    must fit the labels (masks: segment; classes: classify)."""
    if cfg.task not in TASKS:
        raise ConfigError(f"data.task must be one of {', '.join(TASKS)}, got {cfg.task!r}")
    if cfg.task == "segment" and cfg.dataset == "folder":
        from cnnkit.data.segment_folder import build_segment_folder

        data = build_segment_folder(cfg, seed)
    else:
        data = _DATASETS[cfg.dataset].builder(cfg, seed)
    masks = data.train.labels.ndim == 3
    if cfg.task != "auto" and masks != (cfg.task == "segment"):
        what = "image / mask pairs (segmentation)" if masks else "class labels"
        raise ConfigError(
            f"data.task {cfg.task}: dataset {cfg.dataset!r} holds {what}; drop --task or pick a fitting dataset"
        )
    if masks and (cfg.subset_per_class is not None or cfg.balance != "none"):
        raise ConfigError(
            "data.subset_per_class and data.balance work on class labels; a segmentation dataset has masks"
        )
    return data


TASKS = ("auto", "classify", "segment", "gan")
PATH_DATASETS = ("folder", "manifest")


def convert_channels(data: Dataset, channels: int) -> Dataset:
    """The dataset with 1-channel images repeated to RGB, or RGB turned to luma (ITU-R 601);
    mean/std recomputed. For built-ins, whose files have a fixed channel count."""
    import dataclasses

    def conv(split: Split) -> Split:
        x = split.images
        if channels == 3:
            y = x.expand(-1, 3, -1, -1).contiguous()
        else:
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            y = (x.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
        return dataclasses.replace(split, images=y)

    return dataclasses.replace(
        data,
        train=conv(data.train),
        val=conv(data.val),
        test=None if data.test is None else conv(data.test),
        mean=(),
        std=(),
    )


def subset_per_class(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices of (at most) `n` seeded-random examples of each class."""
    from cnnkit.data.types import strata

    g = torch.Generator().manual_seed(seed + 1)
    groups = strata(labels)
    keep = []
    for c in torch.unique(groups).tolist():
        idx = torch.nonzero(groups == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    return torch.sort(torch.cat(keep)).values


def _ensure_builtins() -> None:
    from cnnkit.data import cifar, folder, isbi, manifest, mnist, scenes  # noqa: F401  (registration on import)
