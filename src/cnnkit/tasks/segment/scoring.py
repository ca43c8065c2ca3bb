"""A split's segmentation metrics accumulated batch by batch: the pixel confusion matrix, the summed
cross-entropy and each image's own confusion, so that no (N, K, H, W) logits are ever held (only the
(N, H, W) uint8 predictions for the sample sheet). The numbers are those of metrics.segment_metrics
on the whole split's logits (tested). With eval.tta flip the class scores are the log of the mean of
the image's and its mirror image's softmax (tiling.probabilities)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.device import autocast
from cnnkit.evaluate.predict import _eval_batches
from cnnkit.tasks.segment.metrics import confusion, from_confusion
from cnnkit.tasks.segment.task import IGNORE_INDEX
from cnnkit.tasks.segment.tiling import probabilities


def log_probs(model: torch.nn.Module, x: torch.Tensor, tta: str) -> torch.Tensor:
    """(B, K, H, W) log class probabilities (float32, on x's device)."""
    if tta == "none":
        out: torch.Tensor = model(x).float().log_softmax(1)
        return out
    return probabilities(model, x, tta).clamp_min(1e-30).log()


@torch.no_grad()
def score_split(
    model: torch.nn.Module,
    split: Split,
    class_names: list[str] | None = None,
    *,
    normalize: Normalize,
    batch_size: int = 500,
    precision: str = "fp32",
    tta: str = "none",
) -> tuple[dict[str, Any], torch.Tensor]:
    """(segment_metrics' dict, predictions (N, H, W) uint8) of `model` on `split`, one batch at a time.
    `class_names` None: "0", "1", ... for the model's classes."""
    model.eval()
    names = list(class_names) if class_names is not None else None
    cm: torch.Tensor | None = None
    loss_sum, per_image, preds, start = 0.0, [], [], 0
    for x in _eval_batches(split, batch_size, normalize.device):
        with autocast(normalize.device, precision):
            lp = log_probs(model, normalize(x), tta).float().cpu()
        names = names if names is not None else [str(i) for i in range(lp.shape[1])]
        k = len(names)
        cm = cm if cm is not None else torch.zeros(k, k, dtype=torch.long)
        y = split.labels[start : start + len(lp)]
        pred = lp.argmax(1)
        loss_sum += float(F.nll_loss(lp, y, ignore_index=IGNORE_INDEX, reduction="sum"))
        cm += confusion(pred, y, k)
        for i in range(len(y)):
            m = from_confusion(confusion(pred[i], y[i], k), names)
            per_image.append({"index": start + i, "pixel_accuracy": m["pixel_accuracy"], "miou": m["miou"]})
        preds.append(pred.to(torch.uint8))
        start += len(lp)
    names = names if names is not None else []
    cm = cm if cm is not None else torch.zeros(len(names), len(names), dtype=torch.long)
    out = {"task": "segment", "class_names": names, **from_confusion(cm, names)}
    labelled = int(cm.sum())
    out.update(
        accuracy=out["pixel_accuracy"],
        loss=loss_sum / labelled if labelled else float("nan"),
        num_samples=start,
        num_pixels=labelled,
        per_image=per_image,
    )
    if tta != "none":
        out["tta"] = tta
    return out, torch.cat(preds) if preds else torch.zeros(0, dtype=torch.uint8)


def validation_scores(
    model: torch.nn.Module, split: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32"
) -> dict[str, float]:
    """An epoch's validation numbers (training/validate.py): the mean per-pixel cross-entropy and the mean over
    images of their pixel accuracy (what Task.correct counts during training)."""
    m, _ = score_split(model, split, normalize=normalize, batch_size=batch_size, precision=precision)
    n = len(m["per_image"])
    acc = sum(p["pixel_accuracy"] for p in m["per_image"]) / n if n else float("nan")
    return {"loss": m["loss"], "accuracy": acc}


@torch.no_grad()
def predict_log_probs(
    model: torch.nn.Module, split: Split, *, normalize: Normalize, batch_size: int = 500, tta: str = "none"
) -> torch.Tensor:
    """(N, K, H, W) log class probabilities of the whole split (`cnnkit evaluate --tta flip` on a segmentation
    checkpoint: the mirror image's scores flipped back before averaging, which evaluate/tta.py's views do not)."""
    model.eval()
    out = [log_probs(model, normalize(x), tta).cpu() for x in _eval_batches(split, batch_size, normalize.device)]
    return torch.cat(out) if out else torch.zeros(0, 0)
