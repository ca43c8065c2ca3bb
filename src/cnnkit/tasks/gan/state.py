"""What a DCGAN run carries from step to step and saves in last.ckpt: both networks, both optimisers,
the run's generator (data order and noise), the epoch in progress (its order, step and sums) and the rows;
the EMA of the generator (gan.ema) and the dataset's fingerprint (a resume refuses changed data) when there."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

FORMAT = 1  # the layout of a GAN checkpoint's "train_state"


@dataclasses.dataclass
class GanState:
    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    generator: torch.Generator  # CPU: the data order and every noise draw of training
    epoch: int = 0  # epochs completed
    step: int = 0  # steps done in the epoch in progress
    order: torch.Tensor | None = None  # that epoch's image order
    sums: dict[str, float] = dataclasses.field(default_factory=dict)  # its running sums of the step numbers
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # metrics.csv so far
    train_seconds: float = 0.0
    g_ema: nn.Module | None = None  # gan.ema: the generator's moving average
    dataset: dict[str, Any] | None = None  # data/fingerprint.py's fingerprint of the training data

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT,
            "generator_net": self.g.state_dict(),
            "discriminator_net": self.d.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "step": self.step,
            "order": self.order,
            "sums": dict(self.sums),
            "rows": [dict(r) for r in self.rows],
            "train_seconds": self.train_seconds,
            "generator_ema": self.g_ema.state_dict() if self.g_ema is not None else None,
            "dataset": self.dataset,
        }

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.g.load_state_dict(s["generator_net"])
        self.d.load_state_dict(s["discriminator_net"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        self.generator.set_state(s["rng"])
        torch.set_rng_state(s["torch_rng"])
        self.epoch, self.step, self.order = s["epoch"], s["step"], s["order"]
        self.sums, self.rows, self.train_seconds = dict(s["sums"]), [dict(r) for r in s["rows"]], s["train_seconds"]
        if self.g_ema is not None and s.get("generator_ema") is not None:
            self.g_ema.load_state_dict(s["generator_ema"])
