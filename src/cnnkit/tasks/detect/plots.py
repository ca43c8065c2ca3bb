"""PNGs of a detection evaluation and run: precision-recall curves (one line per class at IoU 0.5),
sheets of images with true (white) and predicted (lime, with scores) boxes, the loss / mAP curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

SHEET_SIDE = 192  # each image of a sheet, enlarged (nearest) to this side


def plot_pr_curves(result: dict[str, Any], path: Path, title: str) -> None:
    pr = result["pr_curves"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, precision in pr["precision"].items():
        if min(precision) >= 0:  # a class with no truth has no curve
            ap = result["ap50_per_class"][name]
            ax.plot(pr["recall"], precision, label=f"{name} (AP {ap:.3f})", linewidth=1.2)
    ax.set(xlabel="recall", ylabel="precision (interpolated)", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(f"{title}\nmAP@0.5 {result['map_50']:.4f}, mAP@[.5:.95] {result['map']:.4f}", fontsize=10)
    ax.legend(fontsize=7, loc="lower left", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Each training loss and the validation mAPs per epoch (metrics.csv's rows)."""
    epochs = [int(r["epoch"]) for r in rows]
    skip = {"epoch", "val_map_50", "val_map", "seconds"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in [k for k in rows[0] if k not in skip]:
        left.plot(epochs, [float(r[key]) for r in rows], label=key, marker=".")
    left.set(xlabel="epoch", ylabel="training loss (per image)", title="losses")
    left.legend(fontsize=7)
    for key, label in (("val_map_50", "mAP@0.5"), ("val_map", "mAP@[.5:.95]")):
        right.plot(epochs, [float(r[key]) for r in rows], label=label, marker=".")
    right.set(xlabel="epoch", ylabel="validation", ylim=(0, 1), title="validation mAP")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_pair(image: torch.Tensor, truth: torch.Tensor, pred: dict[str, torch.Tensor], names: list[str]) -> np.ndarray:
    """(3, S, S) uint8: `image` enlarged, true boxes in white, predictions in lime with "class score"."""
    from torchvision.utils import draw_bounding_boxes

    t = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    scale = max(1, SHEET_SIDE // max(t.shape[1:]))
    t = t.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    if len(truth):
        t = draw_bounding_boxes(t, truth * scale, colors="white", width=1)
    if len(pred["boxes"]):
        labels = [f"{names[int(c)]} {float(s):.2f}" for c, s in zip(pred["labels"], pred["scores"], strict=True)]
        t = draw_bounding_boxes(t, pred["boxes"] * scale, labels, colors="lime", width=2)
    return t.numpy()


def sheet(tiles: list[np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8: up to 4 tiles a row, 4 px gaps."""
    from torchvision.utils import make_grid

    grid = make_grid([torch.from_numpy(t) for t in tiles], nrow=4, padding=4, pad_value=64)
    out: np.ndarray = grid.permute(1, 2, 0).numpy()
    return out
