"""Segmentation metrics from one pixel confusion matrix (torchmetrics' `multiclass_confusion_matrix`,
ignore index 255): per-class IoU and Dice, their means, pixel accuracy, per-class precision / recall.

IoU_c = TP / (TP + FP + FN), Dice_c = 2 TP / (2 TP + FP + FN) (= per-pixel F1), pixel accuracy =
sum TP / labelled pixels. The means (mIoU, Dice) are over the classes present in the truth or the
prediction (a class absent from both has no IoU), as torchmetrics' JaccardIndex with its default
`zero_division` does for classes that appear."""

from __future__ import annotations

from typing import Any

import torch

from cnnkit.tasks.segment.task import IGNORE_INDEX, segment_loss


def confusion(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) pixel counts, rows true, columns predicted; pixels labelled 255 left out."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(
        preds.flatten(), labels.flatten(), num_classes, ignore_index=IGNORE_INDEX, validate_args=False
    ).long()


def from_confusion(cm: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Every number below from the confusion matrix `cm` (rows true, columns predicted)."""
    cm = cm.double()
    tp, true, pred = cm.diag(), cm.sum(1), cm.sum(0)
    union = true + pred - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp_min(1), torch.zeros_like(tp))
    dice = torch.where(present, 2 * tp / (true + pred).clamp_min(1), torch.zeros_like(tp))
    precision = torch.where(pred > 0, tp / pred.clamp_min(1), torch.zeros_like(tp))
    recall = torch.where(true > 0, tp / true.clamp_min(1), torch.zeros_like(tp))
    per_class = {
        name: {
            "iou": float(iou[i]),
            "dice": float(dice[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(dice[i]),  # per-pixel F1 is the Dice coefficient
            "support": int(true[i]),  # labelled pixels of the class
        }
        for i, name in enumerate(class_names)
    }
    n_present = max(int(present.sum()), 1)
    return {
        "pixel_accuracy": float(tp.sum() / cm.sum().clamp_min(1)),
        "miou": float(iou[present].sum() / n_present),
        "dice": float(dice[present].sum() / n_present),
        "per_class": per_class,
        "macro": {
            "precision": float(precision[present].sum() / n_present),
            "recall": float(recall[present].sum() / n_present),
            "f1": float(dice[present].sum() / n_present),
        },
        "confusion_matrix": cm.long().tolist(),
    }


def segment_metrics(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """The final metrics of a split: logits (N, K, H, W), masks (N, H, W). `accuracy` is pixel
    accuracy (what the report and summary.json headline), with each image's own accuracy and IoU."""
    preds = logits.argmax(1)
    cm = confusion(preds, labels, len(class_names))
    out = {"task": "segment", "class_names": list(class_names), **from_confusion(cm, class_names)}
    per_image = []
    for i in range(len(labels)):
        m = from_confusion(confusion(preds[i], labels[i], len(class_names)), class_names)
        per_image.append({"index": i, "pixel_accuracy": m["pixel_accuracy"], "miou": m["miou"]})
    out.update(
        accuracy=out["pixel_accuracy"],
        loss=float(segment_loss(logits, labels)) if len(labels) else float("nan"),
        num_samples=len(labels),
        num_pixels=int(cm.sum()),
        per_image=per_image,
    )
    return out


def format_metrics(m: dict[str, Any]) -> str:
    """`cnnkit evaluate`'s text for a segmentation result: the headline numbers and a per-class table."""
    width = max(8, *(len(n) for n in m["class_names"]))
    out = [
        f"{m.get('dataset', '')} {m.get('split', '')}: {m['num_samples']} images, {m['num_pixels']:,} labelled pixels",
        f"mean IoU        {m['miou']:.4f}",
        f"Dice            {m['dice']:.4f}",
        f"pixel accuracy  {m['pixel_accuracy']:.2%}",
        f"loss            {m['loss']:.4f} (per-pixel cross-entropy)",
        "",
        f"{'class':<{width}}       IoU      Dice precision    recall      pixels",
    ]
    for name, v in m["per_class"].items():
        out.append(
            f"{name:<{width}} {v['iou']:9.4f} {v['dice']:9.4f} {v['precision']:9.2%} {v['recall']:9.2%} {v['support']:11,}"
        )
    if m.get("note"):
        out += ["", m["note"]]
    return "\n".join(out)
