"""`evaluate` and `predict_logits`: a split's loss and accuracy, and its logits, in data order."""

from __future__ import annotations

import time

import torch
from torch import nn

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.device import autocast
from cnnkit.tasks import task_for
from cnnkit.training.batching import eval_batches


@torch.no_grad()
def predict_logits(
    model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32"
) -> torch.Tensor:
    """Logits (N, num_classes) as float32 on the CPU, in data order."""
    model.eval()
    out = []
    for x in eval_batches(data, batch_size, normalize.device):
        with autocast(normalize.device, precision):
            out.append(model(normalize(x)).float().cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def evaluate(
    model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32"
) -> dict[str, float]:
    """Loss and accuracy of `model` on `data` (no label smoothing). Multi-label: mean BCE and exact match."""
    t0 = time.perf_counter()
    logits = predict_logits(model, data, normalize=normalize, batch_size=batch_size, precision=precision)
    if len(data) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "images": 0, "seconds": 0.0}
    task = task_for(data.multi_label)
    loss = task.eval_loss(logits, data.labels).item()
    acc = int(task.correct(logits, data.labels)) / len(data)
    return {"loss": loss, "accuracy": acc, "images": len(data), "seconds": time.perf_counter() - t0}
