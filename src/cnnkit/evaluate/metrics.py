"""Classification metrics from logits, computed with torchmetrics."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
    multilabel_average_precision,
    multilabel_f1_score,
    multilabel_precision,
    multilabel_recall,
)

CALIBRATION_BINS = 15


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor, class_names: list[str]) -> dict:
    """Accuracy (and top-5 when there are more than 5 classes), loss, per-class precision /
    recall / F1 / support, macro and support-weighted averages, expected calibration error,
    and the confusion matrix as counts and row-normalised (rows: true class)."""
    n = len(class_names)
    targets = targets.long()
    logits = logits.float()
    precision = multiclass_precision(logits, targets, average="none", num_classes=n, validate_args=False)
    recall = multiclass_recall(logits, targets, average="none", num_classes=n, validate_args=False)
    f1 = multiclass_f1_score(logits, targets, average="none", num_classes=n, validate_args=False)
    support = torch.bincount(targets, minlength=n)
    result: dict[str, Any] = {
        "num_samples": int(targets.numel()),
        "accuracy": int((logits.argmax(1) == targets).sum()) / targets.numel() if targets.numel() else float("nan"),
        "loss": float(F.cross_entropy(logits, targets)) if targets.numel() else float("nan"),
    }
    if n > 5:
        result["top5_accuracy"] = float(
            multiclass_accuracy(logits, targets, top_k=5, average="micro", num_classes=n, validate_args=False)
        )
    result["macro"] = {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())}
    w = support.double() / max(int(support.sum()), 1)
    result["weighted"] = {
        "precision": float((precision * w).sum()),
        "recall": float((recall * w).sum()),
        "f1": float((f1 * w).sum()),
    }
    result["per_class"] = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    result["class_names"] = list(class_names)
    cm = multiclass_confusion_matrix(logits, targets, num_classes=n, validate_args=False)
    result["confusion_matrix"] = cm.tolist()
    result["confusion_matrix_normalized"] = normalize_rows(cm).tolist()
    if targets.numel():
        probs = torch.softmax(logits, 1)
        result["ece"] = float(
            multiclass_calibration_error(
                probs, targets, n_bins=CALIBRATION_BINS, norm="l1", num_classes=n, validate_args=False
            )
        )
        result["calibration"] = reliability_bins(probs, targets, CALIBRATION_BINS)
    return result


def normalize_rows(cm: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (the recall of each true class on the diagonal); empty rows stay 0."""
    cm = cm.double()
    rows = cm.sum(1, keepdim=True)
    return torch.where(rows > 0, cm / rows.clamp_min(1), torch.zeros_like(cm)).round(decimals=6)


def reliability_bins(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = CALIBRATION_BINS) -> list[dict]:
    """Top-1 confidence split into equal-width bins over [0, 1]: per bin the number of
    samples, their mean confidence and their accuracy. ECE = sum(count * |acc - conf|) / N."""
    conf, pred = probs.max(1)
    correct = (pred == targets.long()).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bin i holds [edges[i], edges[i+1]) as in torchmetrics; a confidence of exactly 1 joins the last bin
    index = (torch.bucketize(conf.double(), edges, right=True) - 1).clamp(0, n_bins - 1)
    bins = []
    for i in range(n_bins):
        sel = index == i
        count = int(sel.sum())
        bins.append(
            {
                "lower": round(float(edges[i]), 6),
                "upper": round(float(edges[i + 1]), 6),
                "count": count,
                "confidence": float(conf[sel].double().mean()) if count else None,
                "accuracy": float(correct[sel].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(bins: list[dict]) -> float:
    """ECE from reliability bins (the same number torchmetrics gives, recomputed from the bins)."""
    total = sum(b["count"] for b in bins)
    return (
        sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]) / total
        if total
        else float("nan")
    )


def hardest_examples(logits: torch.Tensor, targets: torch.Tensor, k: int = 16) -> list[dict]:
    """The k samples with the highest cross-entropy loss (confidently wrong first), as
    {index, true, predicted, probability of the true class, of the prediction, loss}."""
    logits = logits.float()
    targets = targets.long()
    losses = F.cross_entropy(logits, targets, reduction="none")
    probs = torch.softmax(logits, 1)
    order = torch.argsort(losses, descending=True, stable=True)[:k]
    return [
        {
            "index": int(i),
            "true": int(targets[i]),
            "predicted": int(probs[i].argmax()),
            "probability_true": float(probs[i, targets[i]]),
            "probability_predicted": float(probs[i].max()),
            "loss": float(losses[i]),
        }
        for i in order.tolist()
    ]


def multilabel_metrics(
    logits: torch.Tensor, targets: torch.Tensor, class_names: list[str], threshold: float = 0.5
) -> dict:
    """Several labels per image (targets (N, K) multi-hot): per-class average precision (AP)
    and precision / recall / F1 at `threshold` on the sigmoid, their macro means (mean AP),
    exact-match accuracy and the binary cross-entropy loss."""
    n = len(class_names)
    logits = logits.float()
    y = targets.long()
    probs = torch.sigmoid(logits)
    ap = multilabel_average_precision(probs, y, average="none", num_labels=n, validate_args=False)
    precision = multilabel_precision(probs, y, threshold=threshold, average="none", num_labels=n, validate_args=False)
    recall = multilabel_recall(probs, y, threshold=threshold, average="none", num_labels=n, validate_args=False)
    f1 = multilabel_f1_score(probs, y, threshold=threshold, average="none", num_labels=n, validate_args=False)
    support = y.sum(0)
    return {
        "task": "multilabel",
        "num_samples": int(y.shape[0]),
        "threshold": threshold,
        "exact_match": int(((probs >= threshold).long() == y).all(1).sum()) / len(y) if len(y) else float("nan"),
        "loss": float(F.binary_cross_entropy_with_logits(logits, targets.float())) if len(y) else float("nan"),
        "mean_ap": float(ap.nanmean()),
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "per_class": {
            name: {
                "ap": float(ap[i]),
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "class_names": list(class_names),
    }
