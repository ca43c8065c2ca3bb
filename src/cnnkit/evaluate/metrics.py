"""Classification metrics from logits, computed with torchmetrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor, class_names: list[str]) -> dict:
    """Accuracy (and top-5 when there are more than 5 classes), loss, per-class precision /
    recall / F1 / support, macro averages, and the confusion matrix (rows: true class)."""
    n = len(class_names)
    targets = targets.long()
    kw = dict(num_classes=n, validate_args=False)
    precision = multiclass_precision(logits, targets, average="none", **kw)
    recall = multiclass_recall(logits, targets, average="none", **kw)
    f1 = multiclass_f1_score(logits, targets, average="none", **kw)
    support = torch.bincount(targets, minlength=n)
    result = {
        "num_samples": int(targets.numel()),
        "accuracy": int((logits.argmax(1) == targets).sum()) / targets.numel() if targets.numel() else float("nan"),
        "loss": float(F.cross_entropy(logits, targets)) if targets.numel() else float("nan"),
    }
    if n > 5:
        result["top5_accuracy"] = float(multiclass_accuracy(logits, targets, top_k=5, average="micro", **kw))
    result["macro"] = {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())}
    result["per_class"] = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    result["class_names"] = list(class_names)
    result["confusion_matrix"] = multiclass_confusion_matrix(logits, targets, **kw).tolist()
    return result
