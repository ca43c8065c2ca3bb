"""`train_one_epoch`'s arguments grouped by concern: the loss, the precision, the sharding across
processes and the step policy (clipping, non-finite steps). The older flat keywords still work."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from cnnkit.training.hooks import LossFn


@dataclass(frozen=True)
class LossSpec:
    """The loss of a step: `fn(logits, targets)` (None: cross-entropy with `label_smoothing`, or BCE for
    multi-hot labels) plus an L1 penalty `l1 * sum(|p|)` over `l1_params` (reported as train_l1)."""

    fn: LossFn | None = None
    label_smoothing: float = 0.0
    l1: float = 0.0
    l1_params: list[torch.Tensor] | None = None


@dataclass(frozen=True)
class PrecisionSpec:
    """Autocast precision (fp32 | bf16 | fp16) and fp16's gradient scaler (an enabled GradScaler, or None)."""

    precision: str = "fp32"
    scaler: torch.amp.GradScaler | None = None

    @property
    def fp16(self) -> bool:
        return self.scaler is not None and self.scaler.is_enabled()


@dataclass(frozen=True)
class Sharding:
    """Several processes: each takes its contiguous share of every global batch; the sums are reduced."""

    rank: int = 0
    world_size: int = 1

    def take(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of a global batch."""
        per = t.shape[0] // self.world_size
        return t[self.rank * per : (self.rank + 1) * per]


@dataclass(frozen=True)
class StepPolicy:
    """Gradient clipping (max total norm; None / 0: off) and what a non-finite loss or gradient does:
    "stop" raises NonFiniteLossError, "skip" drops the step (counted in the result's skipped_steps)."""

    grad_clip: float | None = None
    on_nan: str = "stop"


_FLAT = {  # train_one_epoch's older keyword spelling: name -> (group, field)
    "loss_fn": ("loss", "fn"),
    "label_smoothing": ("loss", "label_smoothing"),
    "l1": ("loss", "l1"),
    "l1_params": ("loss", "l1_params"),
    "precision": ("amp", "precision"),
    "scaler": ("amp", "scaler"),
    "rank": ("shard", "rank"),
    "world_size": ("shard", "world_size"),
    "grad_clip": ("policy", "grad_clip"),
    "on_nan": ("policy", "on_nan"),
}


def groups(loss, amp, shard, policy, flat: dict) -> tuple[LossSpec, PrecisionSpec, Sharding, StepPolicy]:
    """The grouped arguments, with the older flat keywords (loss_fn=, precision=, rank=, ...) folded in."""
    out: dict[str, Any] = {
        "loss": loss or LossSpec(),
        "amp": amp or PrecisionSpec(),
        "shard": shard or Sharding(),
        "policy": policy or StepPolicy(),
    }
    given = {"loss": loss, "amp": amp, "shard": shard, "policy": policy}
    for name, value in flat.items():
        if name not in _FLAT:
            raise TypeError(f"train_one_epoch() got an unexpected keyword argument {name!r}")
        group, field_name = _FLAT[name]
        if given[group] is not None:
            raise TypeError(f"train_one_epoch(): give {name} inside {group}=, not both")
        out[group] = replace(out[group], **{field_name: value})
    return out["loss"], out["amp"], out["shard"], out["policy"]
