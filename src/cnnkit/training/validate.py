"""`evaluate`: a split's loss and accuracy (its logits from cnnkit.evaluate.predict)."""

from __future__ import annotations

import time

from torch import nn

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.evaluate.predict import predict_logits
from cnnkit.tasks import task_of


def evaluate(
    model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32"
) -> dict[str, float]:
    """Loss and accuracy of `model` on `data` (no label smoothing). Multi-label: mean BCE and exact match."""
    t0 = time.perf_counter()
    if data.masks:  # segmentation: accumulated batch by batch, never (N, K, H, W) logits at once
        from cnnkit.tasks.segment.scoring import validation_scores

        scores = validation_scores(model, data, normalize=normalize, batch_size=batch_size, precision=precision)
        return {**scores, "images": len(data), "seconds": time.perf_counter() - t0}
    logits = predict_logits(model, data, normalize=normalize, batch_size=batch_size, precision=precision)
    if len(data) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "images": 0, "seconds": 0.0}
    task = task_of(data)  # classification, multi-label or segmentation (masks), from the labels
    loss = task.eval_loss(logits, data.labels).item()
    acc = float(task.correct(logits, data.labels)) / len(data)
    return {"loss": loss, "accuracy": acc, "images": len(data), "seconds": time.perf_counter() - t0}
