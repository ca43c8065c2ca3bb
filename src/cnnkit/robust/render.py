"""Pictures of attacks: original | amplified perturbation | adversarial, contact sheets, accuracy-vs-eps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.io_safety import save_figure


def to_uint8(x01: np.ndarray) -> np.ndarray:
    """(C, H, W) floats in [0, 1] -> uint8 (C, H, W), rounded (what a lossless PNG stores)."""
    return np.clip(np.rint(np.asarray(x01, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _hwc(x01: np.ndarray) -> np.ndarray:
    img = np.asarray(x01).transpose(1, 2, 0)
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def amplified(x01: np.ndarray, adv01: np.ndarray) -> tuple[np.ndarray, float]:
    """The change shown around mid-grey, scaled so its largest component reaches the edge; (H, W, 3), scale."""
    delta = _hwc(adv01) - _hwc(x01)
    peak = float(np.abs(delta).max())
    scale = 0.5 / peak if peak > 0 else 1.0
    return np.clip(0.5 + delta * scale, 0, 1), scale


def save_attack_panel(
    x01: np.ndarray, adv01: np.ndarray, path: str | Path, *, titles: tuple[str, str], suptitle: str
) -> Path:
    """One PNG: original | perturbation (amplified, its scale written on it) | adversarial."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pert, scale = amplified(x01, adv01)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.5))
    linf = float(np.abs(np.asarray(adv01) - np.asarray(x01)).max())
    for ax, pic, name in zip(
        axes,
        (_hwc(x01), pert, _hwc(adv01)),
        (titles[0], f"perturbation x{scale:.1f}\n(L∞ {linf * 255:.1f}/255)", titles[1]),
    ):
        ax.imshow(np.clip(pic, 0, 1), interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    axes[1].text(
        0.02,
        0.02,
        f"x{scale:.1f}",
        transform=axes[1].transAxes,
        color="yellow",
        fontsize=12,
        fontweight="bold",
        bbox={"facecolor": "black", "alpha": 0.6},
    )
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_figure(fig, path)


def save_attack_sheet(
    pairs: list[tuple[np.ndarray, np.ndarray, str]], path: str | Path, *, title: str, columns: int = 6
) -> Path:
    """A grid of adversarial images, each captioned (file, prediction before -> after)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(pairs)
    cols = min(columns, max(n, 1))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.5 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, adv, caption) in zip(axes.flat, pairs):
        ax.imshow(np.clip(_hwc(adv), 0, 1), interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def save_accuracy_plot(result: dict, path: str | Path) -> Path:
    """Accuracy against eps for FGSM and PGD (eps in /255 for photos, as is for 0-1 data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = [r["eps"] for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(eps, [r["fgsm"] for r in result["rows"]], "o-", label="FGSM")
    ax.plot(
        eps,
        [r["pgd"] for r in result["rows"]],
        "s-",
        label=f"PGD-{result['steps']} ({result['restarts']} restart{'s' if result['restarts'] != 1 else ''})",
    )
    ax.set_xlabel("eps (L∞, pixel units of the 0-1 image)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    title = f"Robust accuracy, {result.get('dataset', '')} {result.get('split', '')} ({result['n']} images)"
    if result.get("gradients_masked"):
        title += "\nGRADIENTS LOOK MASKED: not trustworthy"
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
