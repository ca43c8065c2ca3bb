"""`cnnkit evaluate RUN` for a detection run (named in cnnkit.evaluate.api.TASK_MODULES): mAP@0.5,
mAP@[.5:.95], per-class AP, precision-recall curves, the best and worst images with predicted and true
boxes, seconds per image; into evaluation/own-<split>/ beside the checkpoint (or --plots DIR):
metrics.json, pr_curves.png, boxes_good.png, boxes_bad.png. finish_detection writes the same set into the
run's plots/ folder for report.html."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torchvision.ops import box_iou

from cnnkit.data.detection import DetectionSplit, png_bytes
from cnnkit.errors import ConfigError
from cnnkit.tasks.detect.metrics import detect_split, score_detections
from cnnkit.tasks.detect.plots import draw_pair, plot_pr_curves, sheet
from cnnkit.tasks.detect.predict import is_detect_checkpoint

__all__ = ["evaluate_detection", "format_metrics", "is_detect_checkpoint", "write_outputs"]
SHOW = 8  # images per sheet
MATCH_SCORE = 0.5  # detections at or above this score count when ranking images


def image_f1(truth: torch.Tensor, labels: torch.Tensor, pred: dict[str, torch.Tensor]) -> float:
    """F1 of one image: detections scoring >= MATCH_SCORE matched greedily (by score) to unmatched true
    boxes of their class at IoU >= 0.5; 1.0 for an image with neither."""
    keep = pred["scores"] >= MATCH_SCORE
    boxes, classes = pred["boxes"][keep], pred["labels"][keep]
    if len(boxes) == 0 and len(truth) == 0:
        return 1.0
    iou = box_iou(boxes, truth) if len(boxes) and len(truth) else torch.zeros(len(boxes), len(truth))
    used, tp = set(), 0
    for i in range(len(boxes)):  # torchvision returns detections sorted by score
        for j in iou[i].argsort(descending=True).tolist():
            if j not in used and iou[i, j] >= 0.5 and labels[j] == classes[i]:
                used.add(j)
                tp += 1
                break
    return 2 * tp / (len(boxes) + len(truth))


def write_outputs(
    result: dict[str, Any], split: DetectionSplit, preds: list[dict[str, torch.Tensor]], names: list[str], out: Path
) -> list[Path]:
    """pr_curves.png, boxes_good.png, boxes_bad.png and metrics.json into `out` (staged: all or none)."""
    from cnnkit.io_safety import staged_folder

    f1 = [image_f1(split.boxes[i], split.labels[i], preds[i]) for i in range(len(split))]
    order = sorted(range(len(split)), key=lambda i: (-f1[i], i))
    result["cases"] = {"good": order[:SHOW], "bad": order[::-1][:SHOW], "image_f1": [round(v, 4) for v in f1]}
    files = ["pr_curves.png", "boxes_good.png", "boxes_bad.png", "metrics.json"]
    with staged_folder(out, hint="or write them elsewhere with --plots DIR") as stage:
        plot_pr_curves(result, stage / files[0], f"Precision-recall at IoU 0.5 ({result.get('split', '')})")
        for key, name in (("good", files[1]), ("bad", files[2])):
            tiles = [draw_pair(split.images[i], split.boxes[i], preds[i], names) for i in result["cases"][key]]
            (stage / name).write_bytes(png_bytes(sheet(tiles)))
        (stage / files[3]).write_text(json.dumps(result, indent=1) + "\n")
    return [out / f for f in files]


def score_split(
    model: torch.nn.Module, split: DetectionSplit, names: list[str], device: torch.device
) -> tuple[dict[str, Any], list[dict[str, torch.Tensor]]]:
    """score_detections with the seconds per image at inference, and the detections."""
    preds, seconds = detect_split(model, split, device)
    return score_detections(preds, split, names) | {"seconds_per_image": round(seconds, 5)}, preds


def evaluate_detection(
    path: str | os.PathLike[str],
    *,
    split: str | None = None,
    device: str = "cpu",
    plots: str | os.PathLike[str] | Callable[[str], str | os.PathLike[str]] | None = None,
    other_data: bool = False,
) -> dict[str, Any]:
    """The metrics dict of a detection run or checkpoint on a split of its own data (test, else val)."""
    from cnnkit.config import Config
    from cnnkit.device import resolve_device
    from cnnkit.tasks.detect.train import detector_from_checkpoint, load_detection_data, load_detector_checkpoint

    if other_data:
        raise ConfigError("cnnkit evaluate: --data / --dataset are not supported for detection runs yet")
    ckpt = load_detector_checkpoint(Path(path))
    data = load_detection_data(Config.from_dict(ckpt["config"], source=str(path)))
    name = split or ("test" if data.test is not None else "val")
    chosen = {"train": data.train, "val": data.val, "test": data.test}[name]
    if chosen is None:
        raise ConfigError(f"--split test: {data.name} has no test split; use --split val")
    dev = resolve_device(device)
    model = detector_from_checkpoint(ckpt).to(dev)
    result, preds = score_split(model, chosen, list(ckpt["class_names"]), dev)
    result = {"task": "detect", "checkpoint": str(path), "dataset": data.name, "split": name, **result}
    if callable(plots):
        plots = plots(name)
    if plots is not None:
        result["files"] = [str(f) for f in write_outputs(result, chosen, preds, list(ckpt["class_names"]), Path(plots))]
    return result


def format_metrics(m: dict[str, Any]) -> str:
    """The terminal table: headline numbers, then AP@0.5 and AP@[.5:.95] per class."""
    width = max(8, *(len(n) for n in m["ap_per_class"]))
    out = [
        f"{m.get('dataset', '')} {m.get('split', '')}: {m['num_images']} images, "
        f"{m['seconds_per_image'] * 1000:.1f} ms per image at inference",
        f"mAP@0.5        {m['map_50']:.4f}",
        f"mAP@[.5:.95]   {m['map']:.4f}",
        f"mAR@100        {m['mar_100']:.4f}",
        "",
        f"{'class':<{width}}   AP@0.5  AP@[.5:.95]",
    ]
    for n, ap in m["ap_per_class"].items():
        out.append(f"{n:<{width}} {m['ap50_per_class'][n]:8.4f} {ap:12.4f}")
    return "\n".join(out)
