"""`train_one_epoch` and `evaluate`: plain functions with explicit arguments returning metric dicts."""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize, batches, num_batches
from cnnkit.data.types import Split
from cnnkit.errors import CnnkitError
from cnnkit.training.device import autocast

StepCallback = Callable[[int, int, float, float, int], None]  # (step, steps, loss, acc, images)


class NonFiniteLossError(CnnkitError):
    pass


def train_one_epoch(
    model: nn.Module,
    data: Split,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    normalize: Normalize,
    batch_size: int,
    generator: torch.Generator,
    augment: BatchAugment | None = None,
    label_smoothing: float = 0.0,
    precision: str = "fp32",
    on_step: StepCallback | None = None,
) -> dict[str, float]:
    """One pass over `data` (shuffled, last partial batch dropped). Returns loss, accuracy, images, seconds."""
    model.train()
    device = normalize.device
    steps = num_batches(len(data), batch_size, drop_last=True)
    total_loss = torch.zeros((), device=device)
    total_correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    t0 = time.perf_counter()
    for step, idx in enumerate(batches(len(data), batch_size, shuffle=True, generator=generator, drop_last=True)):
        x = data.images[idx]
        if augment is not None and augment.active:
            x = augment(x, generator)
        x = normalize(x)
        y = data.labels[idx].to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = y.shape[0]
        seen += n
        total_loss += loss.detach() * n
        total_correct += (logits.detach().argmax(1) == y).sum()
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f"the loss became {loss_value} at step {step + 1} of this epoch; the learning rate is likely too high "
                f"(lower --lr) or the data holds invalid values"
            )
        if on_step is not None:
            on_step(step + 1, steps, loss_value, float(total_correct) / seen, seen)
    loss_avg = float(total_loss) / max(seen, 1)
    return {"loss": loss_avg, "accuracy": float(total_correct) / max(seen, 1), "images": seen, "seconds": time.perf_counter() - t0}


@torch.no_grad()
def predict_logits(model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32") -> torch.Tensor:
    """Logits (N, num_classes) as float32 on the CPU, in data order."""
    model.eval()
    out = []
    for idx in batches(len(data), batch_size):
        with autocast(normalize.device, precision):
            out.append(model(normalize(data.images[idx])).float().cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def evaluate(model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32") -> dict[str, float]:
    """Loss and accuracy of `model` on `data` (no label smoothing)."""
    t0 = time.perf_counter()
    logits = predict_logits(model, data, normalize=normalize, batch_size=batch_size, precision=precision)
    if len(data) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "images": 0, "seconds": 0.0}
    loss = F.cross_entropy(logits, data.labels).item()
    acc = int((logits.argmax(1) == data.labels).sum()) / len(data)
    return {"loss": loss, "accuracy": acc, "images": len(data), "seconds": time.perf_counter() - t0}
