"""Optimisers and learning-rate schedules from their config groups."""

from __future__ import annotations

import math

import torch
from torch import nn

from cnnkit.config import OptimConfig, ScheduleConfig
from cnnkit.errors import ConfigError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only; none on norms and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ConfigError(f"optim.name: unknown optimiser {cfg.name!r}; choose one of {', '.join(OPTIMIZERS)}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule over `total_steps`."""
    if not 0.0 <= cfg.warmup_fraction < 1.0:
        raise ConfigError(f"schedule.warmup_fraction must be in [0, 1), got {cfg.warmup_fraction}")
    total_steps = max(total_steps, 1)
    warmup = int(total_steps * cfg.warmup_fraction)
    if cfg.name == "onecycle":
        # Smith's one-cycle: linear rise from lr/25 to lr, then cosine annealing to lr/1e4.
        lam = lambda step: warmup_cosine(step, total_steps, warmup, start=1 / 25, end=1e-4)  # noqa: E731
    elif cfg.name == "cosine":
        lam = lambda step: warmup_cosine(step, total_steps, warmup, start=1 / max(warmup, 1), end=0.0)  # noqa: E731
    elif cfg.name == "constant":
        lam = lambda step: 1.0  # noqa: E731
    else:
        raise ConfigError(f"schedule.name: unknown schedule {cfg.name!r}; choose one of {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lam)


def warmup_cosine(step: int, total: int, warmup: int, start: float, end: float) -> float:
    """Learning-rate factor: linear from `start` to 1 over `warmup` steps, then cosine to `end`."""
    if step < warmup:
        return start + (1.0 - start) * step / warmup
    progress = min((step - warmup) / max(total - warmup - 1, 1), 1.0)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))
