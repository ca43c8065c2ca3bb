"""An exponential moving average of the generator's weights (gan.ema, the decay; Karras et al. 2018 and
Yazici et al. 2019 show that such an average draws steadier samples): after each step
ema <- decay * ema + (1 - decay) * weights, batch-norm statistics copied. Samples and `cnnkit generate` use it."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(g: nn.Module) -> nn.Module:
    """The average's starting point: a frozen copy of `g`."""
    ema = copy.deepcopy(g)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, g: nn.Module, decay: float) -> None:
    """One step of the average (parameters), buffers (batch-norm running statistics) copied as they are."""
    for pe, p in zip(ema.parameters(), g.parameters(), strict=True):
        pe.lerp_(p.detach(), 1.0 - decay)
    for be, b in zip(ema.buffers(), g.buffers(), strict=True):
        be.copy_(b)
