"""An exponential moving average of the weights, evaluated and saved alongside the raw weights."""

from __future__ import annotations

import copy

import torch
from torch import nn

from cnnkit.checkpoint import unwrap


class EMA:
    """shadow <- d * shadow + (1 - d) * weights after each step, d = min(decay, (1 + t) / (10 + t)).

    The warm-up of d keeps the average from remembering the random initialisation. Buffers
    that are not floating point (BatchNorm's step counter) are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        for shadow, value in zip(self.module.state_dict().values(), unwrap(model).state_dict().values()):
            if shadow.dtype.is_floating_point:
                shadow.lerp_(value.detach(), 1.0 - d)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "state_dict": {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.module.load_state_dict(state["state_dict"])
