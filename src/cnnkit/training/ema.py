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
        return {
            "decay": self.decay,
            "updates": self.updates,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.module.load_state_dict(state["state_dict"])


class Lookahead:
    """Lookahead with a growing pull (hlb-CIFAR10, airbench): every `every` steps the slow
    weights move toward the fast ones, slow <- d * slow + (1 - d) * fast, and the fast
    weights restart from the slow ones; d = base^every * (t / total)^3 is ~0 early (plain
    training) and rises to base^every at the end, averaging away the last steps' noise.
    `finish` leaves the model on the slow weights. Buffers (BatchNorm statistics) are
    averaged alike; integer buffers are left alone.
    """

    def __init__(self, model: nn.Module, total_steps: int, every: int = 5, base: float = 0.95):
        self.slow = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}
        self.total, self.every, self.base, self.steps = max(total_steps, 1), every, base, 0

    def decay(self) -> float:
        return self.base**self.every * min(self.steps / self.total, 1.0) ** 3

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self._pull(model, self.decay())

    @torch.no_grad()
    def finish(self, model: nn.Module) -> None:
        self._pull(model, 1.0)

    def _pull(self, model: nn.Module, d: float) -> None:
        for slow, fast in zip(self.slow.values(), unwrap(model).state_dict().values()):
            if fast.dtype.is_floating_point:
                slow.lerp_(fast, 1.0 - d)
                fast.copy_(slow)

    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "total": self.total,
            "every": self.every,
            "base": self.base,
            "slow": {k: v.cpu().clone() for k, v in self.slow.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.total, self.every, self.base = state["steps"], state["total"], state["every"], state["base"]
        for k, v in state["slow"].items():
            self.slow[k].copy_(v)
