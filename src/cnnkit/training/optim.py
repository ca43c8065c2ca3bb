"""Optimisers, parameter groups and learning-rate schedules from their config groups.

Per-group learning rates (transfer learning's discriminative rates): pass `groups`, a list
of ``{"params": [...], "lr_scale": 0.1}`` dicts (extra keys such as "name" are kept), to
`build_optimizer`; every group is still split into decay / no-decay parts, parameters not
named in any group form a last group at the base rate, and the schedules scale each
group's own rate.
"""

from __future__ import annotations

import fnmatch
import math
import typing
from typing import Literal

import torch
from torch import nn

from cnnkit.config import OptimConfig, ScheduleConfig
from cnnkit.errors import ConfigError

NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(
    model: nn.Module, weight_decay: float, groups: list[dict] | None = None, bias_lr_scale: float = 1.0
) -> list[dict]:
    """Weight decay on conv/linear weights only (ndim > 1); none on norms and biases. The
    normalisation layers' parameters (batch norm's shift and scale...) learn at `bias_lr_scale`
    times the rate (optim.bias_lr_scale; airbench's 64x for BatchNorm shifts); other biases
    (a convolution's, the head's) keep the base rate.

    Each of `groups` (default: one group of every parameter) becomes two optimiser groups
    carrying its other keys (lr_scale, name...).
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    explicit = groups is not None
    if groups is None:
        groups = [{"params": trainable}]
    else:
        groups = [dict(g, params=list(g["params"])) for g in groups]
        named = {id(p) for g in groups for p in g["params"]}
        rest = [p for p in trainable if id(p) not in named]
        if rest:
            groups.append({"params": rest})
    norms = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False)}
    out = []
    for g in groups:
        extra = {k: v for k, v in g.items() if k != "params"}
        # explicit groups keep frozen parameters too, so that unfreezing later (gradual
        # fine-tuning) needs no new optimiser; optimisers skip parameters without gradients
        params = list(g["params"]) if explicit else [p for p in g["params"] if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        wd = extra.pop("weight_decay", weight_decay)
        if decay or len(groups) == 1:
            out.append({**extra, "params": decay, "weight_decay": wd})
        if bias_lr_scale != 1.0:
            scaled = [p for p in no_decay if id(p) in norms]
            no_decay = [p for p in no_decay if id(p) not in norms]
            if scaled:
                out.append(
                    {
                        **extra,
                        "params": scaled,
                        "weight_decay": 0.0,
                        "lr_scale": extra.get("lr_scale", 1.0) * bias_lr_scale,
                    }
                )
        if no_decay or (len(groups) == 1 and len(out) == 1):
            out.append({**extra, "params": no_decay, "weight_decay": 0.0})
    return out


def l1_parameters(model: nn.Module, pattern: str = "*weight") -> list[torch.Tensor]:
    """Conv/linear weights (ndim > 1) whose names match the fnmatch `pattern` (optim.l1_params)."""
    return [
        p for name, p in model.named_parameters() if p.requires_grad and p.ndim > 1 and fnmatch.fnmatch(name, pattern)
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig, groups: list[dict] | None = None) -> torch.optim.Optimizer:
    if cfg.bias_lr_scale <= 0:
        raise ConfigError(f"optim.bias_lr_scale must be positive, got {cfg.bias_lr_scale}")
    pg = param_groups(model, cfg.weight_decay, groups, cfg.bias_lr_scale)
    for g in pg:
        g["lr"] = cfg.lr * g.pop("lr_scale", 1.0)
    if cfg.name == "sgd":
        return torch.optim.SGD(pg, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.name == "adamw":
        return torch.optim.AdamW(pg, lr=cfg.lr)
    if cfg.name == "adam":
        # Adam's weight decay is L2 added to the gradient (AdamW decouples it)
        return torch.optim.Adam(pg, lr=cfg.lr)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(pg, lr=cfg.lr, momentum=cfg.momentum)
    typing.assert_never(cfg.name)  # optim.name is checked by the config loader (a Literal)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: ScheduleConfig,
    total_steps,
    steps_per_epoch: int = 1,
    mode: Literal["min", "max"] = "max",
):
    """A per-step schedule over `total_steps` (an int, or a callable giving the current plan: a
    time budget re-plans it); "plateau" is per epoch (ReduceLROnPlateau on train.monitor, `mode` max/min)."""
    if not 0.0 <= cfg.warmup_fraction < 1.0:
        raise ConfigError(f"schedule.warmup_fraction must be in [0, 1), got {cfg.warmup_fraction}")
    planned = total_steps if callable(total_steps) else (lambda: total_steps)

    def ends() -> tuple[int, int]:
        total = max(int(planned()), 1)
        return total, int(total * cfg.warmup_fraction)

    if cfg.name == "onecycle":
        # Smith's one-cycle: linear rise from lr/25 to lr, then cosine annealing to lr/1e4 (the defaults).
        lam = lambda step: warmup_cosine(step, *ends(), start=cfg.initial_factor, end=cfg.final_factor)  # noqa: E731
    elif cfg.name == "triangle":
        # the speed-record schedule: linear rise, then linear fall (airbench: 0.2 -> 1 over 23 %, -> 0.07)
        lam = lambda step: warmup_linear(step, *ends(), start=cfg.initial_factor, end=cfg.final_factor)  # noqa: E731
    elif cfg.name == "cosine":
        lam = lambda step: warmup_cosine(step, *ends(), start=1 / max(ends()[1], 1), end=0.0)  # noqa: E731
    elif cfg.name == "step":
        if cfg.step_epochs < 1:
            raise ConfigError(f"schedule.step_epochs must be at least 1, got {cfg.step_epochs}")
        every = cfg.step_epochs * max(steps_per_epoch, 1)
        lam = lambda step: cfg.gamma ** (step // every)  # noqa: E731
    elif cfg.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.plateau_factor, patience=cfg.plateau_patience
        )
    elif cfg.name == "constant":
        lam = lambda step: 1.0  # noqa: E731
    else:
        typing.assert_never(cfg.name)  # schedule.name is checked by the config loader (a Literal)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lam)


def is_per_epoch(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def warmup_linear(step: int, total: int, warmup: int, start: float, end: float) -> float:
    """Learning-rate factor: linear from `start` to 1 over `warmup` steps, then linear to `end` at `total`."""
    if step < warmup:
        return start + (1.0 - start) * step / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 1.0 + (end - 1.0) * progress


def warmup_cosine(step: int, total: int, warmup: int, start: float, end: float) -> float:
    """Learning-rate factor: linear from `start` to 1 over `warmup` steps, then cosine to `end`."""
    if step < warmup:
        return start + (1.0 - start) * step / warmup
    progress = min((step - warmup) / max(total - warmup - 1, 1), 1.0)
    return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * progress))
