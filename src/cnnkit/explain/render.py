"""Pictures of explanations: heat-map colouring, overlays, per-image panels, contact sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

METHOD_TITLES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "saliency": "saliency",
    "smoothgrad": "SmoothGrad",
    "integrated-gradients": "integrated gradients",
    "attention": "CBAM spatial attention (beside Grad-CAM)",
    "rollout": "attention rollout",
}


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) with C in 1, 3 -> uint8 (H, W, 3)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return img.astype(np.uint8)


def colorize(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """(H, W) in [0, 1] -> uint8 (H, W, 3) through a matplotlib colour map (no figure)."""
    from matplotlib import colormaps

    return (colormaps[cmap](np.clip(heat, 0, 1))[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map's colours blended over the image (uint8 (H, W, 3))."""
    base = to_rgb(image).astype(np.float32)
    return ((1 - alpha) * base + alpha * colorize(heat).astype(np.float32)).round().clip(0, 255).astype(np.uint8)


def upscale(rgb: np.ndarray, min_side: int = 96) -> np.ndarray:
    """Nearest-neighbour enlargement of small images (whole factors) so pixels stay visible."""
    f = max(1, -(-min_side // max(1, min(rgb.shape[:2]))))
    return rgb.repeat(f, 0).repeat(f, 1) if f > 1 else rgb


def save_panel(image: np.ndarray, heat: np.ndarray, path: str | Path, *, title: str, method: str) -> Path:
    """One PNG: original | heat map | overlay, side by side, with a title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    panels = [(to_rgb(image), "image"), (heat, METHOD_TITLES.get(method, method)), (overlay(image, heat), "overlay")]
    for ax, (pic, name) in zip(axes, panels):
        if pic.ndim == 2:
            im = ax.imshow(pic, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        else:
            ax.imshow(pic, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path, dpi=100)


def save_contact_sheet(
    images: list[np.ndarray],
    heats: list[np.ndarray],
    captions: list[str],
    path: str | Path,
    *,
    title: str,
    columns: int = 6,
) -> Path:
    """A grid of overlays, each captioned (prediction, probability, file name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    cols = min(columns, max(n, 1))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.4 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, heat, cap in zip(axes.flat, images, heats, captions):
        ax.imshow(overlay(img, heat), interpolation="nearest")
        ax.set_title(cap, fontsize=8)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path, dpi=90)


def save_figure(fig, path: str | Path, dpi: int = 90) -> Path:
    """Lay out `fig`, write it to `path` atomically (creating the folder) and free it."""
    from cnnkit.io_safety import save_figure as save_atomically

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_atomically(fig, path, dpi=dpi)
