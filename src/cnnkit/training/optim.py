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
    if cfg.name == "onecycle":
        max_lrs = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=max(cfg.warmup_fraction, 1e-3), cycle_momentum=False
        )
    if cfg.name == "cosine":
        warmup = int(total_steps * cfg.warmup_fraction)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(total_steps - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if cfg.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    raise ConfigError(f"schedule.name: unknown schedule {cfg.name!r}; choose one of {', '.join(SCHEDULES)}")
