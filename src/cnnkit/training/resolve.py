"""`resolve_config(cfg, data, device) -> Config`: the run's config with every automatic choice made
concrete, in one place, so config.yaml records what ran and the run reproduces.

What it settles (pure: no file, no RNG, no output; the caller prints `notes`):
    runtime.precision   auto -> fp32 | bf16 | fp16 for `device` (device.resolve_precision)
    augment           a preset expanded into its keys, keys the config sets kept (preset: null)
    train.batch_size  clamped to a training set smaller than the batch (a multiple of the processes)
    model.name        auto -> models/auto.py's choice for the data's channels and size
    data.channels / data.image_size   an image folder's, as found (new runs; resumed ones have them)
Not here, because they come first or from elsewhere: recipes and photo defaults (training/recipes.py,
training/auto.py: before the data exists), model.kwargs the builder gets from the data
(`model_kwargs`, not recorded), run.name (the run folder's).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import torch

from cnnkit.config import AugmentConfig, Config
from cnnkit.data.presets import apply_preset
from cnnkit.data.types import Dataset
from cnnkit.device import resolve_precision
from cnnkit.errors import ConfigError
from cnnkit.models import model_info
from cnnkit.models.auto import auto_model
from cnnkit.tasks import task_of
from cnnkit.training.batching import clamp_batch_size, clamp_note


def resolve_precision_of(cfg: Config, device: torch.device) -> Config:
    """runtime.precision auto made concrete for `device`."""
    if cfg.runtime.precision != "auto":
        return cfg
    return dataclasses.replace(
        cfg, runtime=dataclasses.replace(cfg.runtime, precision=typing.cast(Any, resolve_precision("auto", device)))
    )


def resolve_auto_model(cfg: Config, data: Dataset) -> Config:
    """`cfg` with model.name auto made concrete for `data` (recorded so the run reproduces)."""
    if cfg.model.name != "auto":
        return cfg
    side = max(data.image_size)
    name = task_of(data).default_model(data.channels, side) or auto_model(data.channels, side)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name))


def with_preset(aug: AugmentConfig, dataset: str, image_size: int) -> AugmentConfig:
    """The preset's augmentation, with any key the config sets to a non-default value kept.
    The resolved config records the expanded keys (preset: null), so the run reproduces."""
    defaults = AugmentConfig()
    explicit = {
        f.name: getattr(aug, f.name)
        for f in dataclasses.fields(aug)
        if f.name != "preset" and getattr(aug, f.name) != getattr(defaults, f.name)
    }
    assert aug.preset is not None  # resolve_config calls this only when augment.preset is set
    expanded = apply_preset(aug, aug.preset, dataset=dataset, image_size=image_size)
    return dataclasses.replace(expanded, **explicit, preset=None)


def model_kwargs(cfg: Config, data: Dataset) -> dict:
    """model.kwargs plus what the builder takes from the data (image_size); num_classes / in_chans are reserved."""
    kwargs = dict(cfg.model.kwargs)
    for reserved in ("num_classes", "in_chans"):
        if reserved in kwargs:
            raise ConfigError(f"model.kwargs.{reserved} is set from the dataset; remove it")
    params = inspect.signature(model_info(cfg.model.name).builder).parameters
    if "image_size" in params and "image_size" not in kwargs:
        kwargs["image_size"] = data.image_size[0]
    return kwargs


def resolve_config(
    cfg: Config, data: Dataset, device: torch.device, *, world_size: int = 1, new_run: bool = True
) -> tuple[Config, list[str]]:
    """The config with every automatic choice made for `data` on `device` (see the module's list),
    and the notes to show (a clamped batch). `new_run`: also record an image folder's channels and size."""
    notes = []
    cfg = resolve_precision_of(cfg, device)
    if cfg.augment.preset:
        cfg = dataclasses.replace(cfg, augment=with_preset(cfg.augment, cfg.data.dataset, data.image_size[0]))
    n, batch = len(data.train), cfg.train.batch_size
    if n < batch:  # a small dataset: one step per epoch, recorded in config.yaml
        clamped = clamp_batch_size(batch, n, world_size, quiet=True)
        notes.append(clamp_note(batch, n, clamped))
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=clamped))
    cfg = resolve_auto_model(cfg, data)
    if new_run and cfg.data.dataset == "folder":
        cfg = dataclasses.replace(
            cfg, data=dataclasses.replace(cfg.data, channels=data.channels, image_size=data.image_size[0])
        )
    return cfg, notes
