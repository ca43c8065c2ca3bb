"""Detection scores: mAP@0.5 and mAP@[.5:.95] (overall and per class) with torchmetrics'
MeanAveragePrecision on the pycocotools backend (COCO's own evaluation code)."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from cnnkit.data.detection import DetectionSplit
from cnnkit.tasks.detect.model import as_targets


@torch.no_grad()
def detect(model: nn.Module, images: torch.Tensor, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Detections of a uint8 batch (B, C, H, W): per image boxes (K, 4), scores (K,), labels (K,) 0-based."""
    model.eval()
    out = model([im.to(device).float().div_(255) for im in images])
    return [{"boxes": o["boxes"].cpu(), "scores": o["scores"].cpu(), "labels": o["labels"].cpu() - 1} for o in out]


def evaluate_map(
    model: nn.Module, split: DetectionSplit, class_names: list[str], device: torch.device, batch_size: int = 32
) -> dict[str, Any]:
    """map_50, map (0.5:0.95), per-class AP@[.5:.95] and AP@0.5... of `model` on `split`, and seconds per image."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="bbox", class_metrics=True, backend="pycocotools")
    start = time.perf_counter()
    for lo in range(0, len(split), batch_size):
        preds = detect(model, split.images[lo : lo + batch_size], device)
        truth = as_targets(split.boxes[lo : lo + batch_size], split.labels[lo : lo + batch_size], torch.device("cpu"))
        metric.update(preds, [{"boxes": t["boxes"], "labels": t["labels"] - 1} for t in truth])
    seconds = time.perf_counter() - start
    r = metric.compute()
    per_class = {}
    classes = r["classes"].flatten().tolist()
    for c, ap in zip(classes, r["map_per_class"].flatten().tolist(), strict=True):
        per_class[class_names[int(c)]] = round(float(ap), 4)
    return {
        "map_50": round(float(r["map_50"]), 4),
        "map": round(float(r["map"]), 4),
        "mar_100": round(float(r["mar_100"]), 4),
        "ap_per_class": per_class,
        "num_images": len(split),
        "seconds_per_image": round(seconds / max(len(split), 1), 5),
    }
