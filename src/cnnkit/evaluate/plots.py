"""PNG plots for the run folder (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def plot_learning_curves(rows: list[dict], path: str | Path | BinaryIO, accuracy: str = "accuracy") -> None:
    """Loss and accuracy per epoch; `accuracy` names what the accuracy columns measure (e.g. "exact match")."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train (with label smoothing)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], "o-", label="val")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.plot(epochs, [100 * r["train_accuracy"] for r in rows], "o-", label="train")
    ax_acc.plot(epochs, [100 * r["val_accuracy"] for r in rows], "o-", label="val")
    ax_acc.set(xlabel="epoch", ylabel=f"{accuracy} (%)", title=accuracy[:1].upper() + accuracy[1:])
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(
    matrix: list[list[int]],
    class_names: list[str],
    path: str | Path,
    title: str = "Confusion matrix",
    normalized: bool = False,
) -> None:
    """Cells coloured by the row-normalised value (the share of each true class); the text is
    the count, or with `normalized` the share in per cent."""
    cm = np.asarray(matrix, dtype=np.int64)
    n = len(class_names)
    row_sum = cm.sum(1, keepdims=True)
    norm = np.divide(cm, row_sum, out=np.zeros_like(cm, dtype=float), where=row_sum > 0)
    side = min(max(4.0, 0.5 * n + 2), 30.0)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                text = f"{100 * norm[i, j]:.0f}" if normalized else str(cm[i, j])
                if normalized and cm[i, j] == 0:
                    text = "·"
                ax.text(
                    j, i, text, ha="center", va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black"
                )
        ax.set_xticks(range(n), class_names, rotation=90 if n > 10 else 0)
        ax.set_yticks(range(n), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title + (" (% of each true class)" if normalized else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_reliability_diagram(bins: list[dict], ece: float, path: str | Path, title: str = "Calibration") -> None:
    """Accuracy against confidence per bin (bars), the diagonal of perfect calibration, the gap
    shaded, and how many samples fall in each bin below."""
    lower = np.array([b["lower"] for b in bins])
    width = np.array([b["upper"] - b["lower"] for b in bins])
    count = np.array([b["count"] for b in bins])
    acc = np.array([b["accuracy"] if b["count"] else 0.0 for b in bins])
    conf = np.array([b["confidence"] if b["count"] else 0.0 for b in bins])
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    has = count > 0
    ax.bar(
        lower[has],
        acc[has],
        width=width[has],
        align="edge",
        color="#4c72b0",
        edgecolor="white",
        label="accuracy of the images in each confidence bin",
    )
    gap_lo, gap_hi = np.minimum(acc, conf), np.maximum(acc, conf)
    ax.bar(
        lower[has],
        (gap_hi - gap_lo)[has],
        bottom=gap_lo[has],
        width=width[has],
        align="edge",
        color="#dd8452",
        alpha=0.5,
        edgecolor="#dd8452",
        label="gap between that accuracy and the bin's mean confidence",
    )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration (accuracy = confidence)")
    ax.set(
        ylabel="accuracy in the bin",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"{title}\nexpected calibration error {100 * ece:.2f} %",
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax_n.bar(lower, count, width=width, align="edge", color="#888888", edgecolor="white")
    ax_n.set(xlabel="confidence (top-1 probability)", ylabel="samples")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_hardest_examples(
    images, captions: list[str], path: str | Path, title: str = "Hardest examples", columns: int = 8
) -> None:
    """A gallery of uint8 images (N, C, H, W), each captioned (true / predicted label, loss)."""
    imgs = np.asarray(images)
    n = len(imgs)
    cols = min(columns, max(n, 1))
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.2 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap in zip(axes.flat, imgs, captions):
        pic = img.transpose(1, 2, 0)
        ax.imshow(pic[..., 0] if pic.shape[-1] == 1 else pic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(cap, fontsize=7)
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no examples", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_per_class(metrics: dict, path: str | Path, title: str = "Per-class metrics") -> None:
    """Multi-label runs (see multilabel_metrics): average precision and F1 at the threshold of
    each class as grouped bars, with the support under each class name and mean AP as a line."""
    names = list(metrics["class_names"])
    pc = metrics["per_class"]
    ap = np.array([pc[n]["ap"] for n in names], dtype=float)
    f1 = np.array([pc[n]["f1"] for n in names], dtype=float)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(min(max(5.0, 0.6 * len(names) + 2), 30.0), 4))
    ax.bar(x - 0.2, np.nan_to_num(ap), width=0.4, color="#4c72b0", label="AP")
    ax.bar(x + 0.2, f1, width=0.4, color="#dd8452", label=f"F1 at {metrics.get('threshold', 0.5)}")
    ax.axhline(metrics["mean_ap"], color="k", ls="--", lw=1, label=f"mean AP {metrics['mean_ap']:.3f}")
    ax.set_xticks(x, [f"{n}\n({pc[n]['support']})" for n in names], rotation=90 if len(names) > 12 else 0, fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="score", title=title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
