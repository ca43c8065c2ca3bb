"""The dataset registry: one name per dataset, each a builder from a DataConfig."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from cnnkit.config import DataConfig
from cnnkit.data.types import Dataset
from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    builder: Callable[[DataConfig, int], Dataset]
    description: str
    num_classes: int | None
    size: str  # e.g. "10,000 train / 2,000 test, 1x28x28"
    location: str  # where it is looked for


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, description: str, num_classes: int | None, size: str, location: str):
    def wrap(fn: Callable[[DataConfig, int], Dataset]):
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        _DATASETS[name] = DatasetInfo(name, fn, description, num_classes, size, location)
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
        raise ConfigError(f"data.dataset: unknown dataset {cfg.dataset!r}.{hint} Known: {', '.join(sorted(_DATASETS))}.")
    if cfg.path is not None and cfg.dataset != "folder":
        raise ConfigError(f"data.path is only used with data.dataset 'folder' (got dataset {cfg.dataset!r}); use --data PATH")
    if cfg.channels not in (None, 1, 3):
        raise ConfigError(f"data.channels must be 1 or 3, got {cfg.channels}")
    data = _DATASETS[cfg.dataset].builder(cfg, seed)
    if cfg.subset_per_class is not None:
        if cfg.subset_per_class < 1:
            raise ConfigError(f"data.subset_per_class must be at least 1, got {cfg.subset_per_class}")
        data.train = data.train.subset(subset_per_class(data.train.labels, cfg.subset_per_class, seed))
    return data


def subset_per_class(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices of (at most) `n` seeded-random examples of each class."""
    g = torch.Generator().manual_seed(seed + 1)
    keep = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    return torch.sort(torch.cat(keep)).values


def _ensure_builtins() -> None:
    from cnnkit.data import folder, mnist  # noqa: F401  (registration on import)
