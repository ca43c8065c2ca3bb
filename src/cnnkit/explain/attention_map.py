"""CBAM's spatial attention map, read from the model, beside Grad-CAM for the same image.

A CBAM block (models/attention.py) computes Ms = sigmoid(conv7x7([mean_c, max_c])), a
(B, 1, h, w) map of where the block lets features through. `spatial_attention(model, x)`
records it with a forward hook (the deepest CBAM by default, or the one `--layer` names),
upsamples it to the input size and keeps its values: unlike Grad-CAM, which is scaled per
image, an attention map is already a gate in (0, 1), so 0.9 means "passed at 90 %".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.explain.render import overlay, save_figure, to_rgb
from cnnkit.models.attention import CBAM, SpatialAttention


def attention_layers(model: nn.Module) -> list[str]:
    """Names of the spatial-attention modules, input to output."""
    return [n for n, m in model.named_modules() if isinstance(m, SpatialAttention)]


def resolve_attention(model: nn.Module, name: str | None) -> tuple[str, SpatialAttention]:
    """The spatial gate at `name` (a CBAM block or its `.spatial`), default the deepest one."""
    layers = attention_layers(model)
    if not layers:
        raise ConfigError(
            "--method attention needs a model with CBAM blocks (a spec with cbam(r), res(out, attn=cbam), "
            "or a ResNet with model.kwargs.attention: cbam); this one has none: use --method gradcam"
        )
    modules = dict(model.named_modules())
    if name is None:
        name = layers[-1]
    elif isinstance(modules.get(name), CBAM):
        name = f"{name}.spatial"
    if name not in layers:
        raise ConfigError(f"--layer {name!r} is not a CBAM block; the model's are: {', '.join(layers)}")
    return name, modules[name]  # type: ignore[return-value]


def spatial_attention(model: nn.Module, x: torch.Tensor, layer: str | None = None) -> np.ndarray:
    """(B, H, W) in (0, 1): the chosen CBAM block's spatial gate for the normalised batch `x`."""
    _, module = resolve_attention(model, layer)
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    gate = F.interpolate(seen[-1].float(), size=x.shape[-2:], mode="nearest")[:, 0]  # (B, H, W)
    return gate.cpu().numpy()


def save_attention_panel(
    image: np.ndarray, attention: np.ndarray, gradcam: np.ndarray, path: str | Path, *, title: str
) -> Path:
    """One PNG: image | CBAM spatial attention | Grad-CAM | attention overlaid on the image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    panels = [
        (to_rgb(image), "image"),
        (attention, "CBAM spatial attention"),
        (gradcam, "Grad-CAM"),
        (overlay(image, attention), "attention overlay"),
    ]
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
