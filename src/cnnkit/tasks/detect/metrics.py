"""Detection scores: mAP@0.5 and mAP@[.5:.95] (overall and per class) with torchmetrics'
MeanAveragePrecision on the pycocotools backend (COCO's own evaluation code), and the precision-recall
curves at IoU 0.5 read from its precision array (COCO's interpolated precision at 101 recall points)."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from cnnkit.data.detection import DetectionSplit

RECALLS = [round(i / 100, 2) for i in range(101)]  # COCO's recall thresholds, the x of every PR curve


@torch.no_grad()
def detect(model: nn.Module, images: torch.Tensor, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Detections of a uint8 batch (B, C, H, W): per image boxes (K, 4), scores (K,), labels (K,) 0-based."""
    model.eval()
    out = model([im.to(device).float().div_(255) for im in images])
    return [{"boxes": o["boxes"].cpu(), "scores": o["scores"].cpu(), "labels": o["labels"].cpu() - 1} for o in out]


def detect_split(
    model: nn.Module, split: DetectionSplit, device: torch.device, batch_size: int = 32
) -> tuple[list[dict[str, torch.Tensor]], float]:
    """Every image's detections (0-based labels) and the seconds per image they took."""
    preds: list[dict[str, torch.Tensor]] = []
    start = time.perf_counter()
    for lo in range(0, len(split), batch_size):
        preds += detect(model, split.images[lo : lo + batch_size], device)
    return preds, (time.perf_counter() - start) / max(len(split), 1)


def score_detections(
    preds: list[dict[str, torch.Tensor]], split: DetectionSplit, class_names: list[str]
) -> dict[str, Any]:
    """map_50, map, mar_100, per-class AP@[.5:.95] (ap_per_class) and AP@0.5 (ap50_per_class), and per class
    the precision at each of RECALLS at IoU 0.5 (pr_curves; -1 where COCO has none: a class with no truth)."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type="bbox", class_metrics=True, backend="pycocotools", extended_summary=True)
    metric.update(preds, [{"boxes": b, "labels": c} for b, c in zip(split.boxes, split.labels, strict=True)])
    r = metric.compute()
    classes = [int(c) for c in r["classes"].flatten().tolist()]
    # precision: (IoU thresholds 0.5..0.95, 101 recalls, classes in `classes` order, areas (all first), max dets)
    precision = r["precision"][0, :, :, 0, -1]  # IoU 0.5, all areas, 100 detections: (101, K)
    per_class, per_class_50, curves = {}, {}, {}
    for k, (c, ap) in enumerate(zip(classes, r["map_per_class"].flatten().tolist(), strict=True)):
        p = precision[:, k]
        per_class[class_names[c]] = round(float(ap), 4)
        per_class_50[class_names[c]] = round(float(p.mean()), 4) if (p > -1).all() else -1.0
        curves[class_names[c]] = [round(float(v), 4) for v in p]
    return {
        "map_50": round(float(r["map_50"]), 4),
        "map": round(float(r["map"]), 4),
        "mar_100": round(float(r["mar_100"]), 4),
        "ap_per_class": per_class,
        "ap50_per_class": per_class_50,
        "pr_curves": {"iou": 0.5, "recall": RECALLS, "precision": curves},
        "num_images": len(split),
    }


def evaluate_map(
    model: nn.Module, split: DetectionSplit, class_names: list[str], device: torch.device, batch_size: int = 32
) -> dict[str, Any]:
    """score_detections of `model` on `split` (without the curves) and the seconds per image at inference."""
    preds, seconds = detect_split(model, split, device, batch_size)
    result = score_detections(preds, split, class_names)
    result.pop("pr_curves")
    return result | {"seconds_per_image": round(seconds, 5)}
