"""Feature maps: what each layer's channels respond to in one image."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.explain.render import save_figure
from cnnkit.io_safety import staged_folder


@dataclass
class LayerOutput:
    name: str
    kind: str  # the module's class name, e.g. Conv2d, ReLU, MaxPool2d
    output: torch.Tensor  # (C, H, W) for one image

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.output.shape)


def default_layers(model: nn.Module) -> list[str]:
    """Each stage: the children of `model.features` when the model has one, else every Conv2d."""
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential) and len(features):
        return [f"features.{name}" for name, _ in features.named_children()]
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def expand_steps(model: nn.Module, layers: list[str]) -> list[str]:
    """Each layer's leaf modules in order (conv, batch norm, ReLU, pooling), to see each step's effect."""
    modules = dict(model.named_modules())
    out: list[str] = []
    for name in layers:
        leaves = [f"{name}.{n}" for n, m in modules[name].named_modules() if n and not list(m.children())]
        out.extend(leaves or [name])
    return out


def feature_maps(model: nn.Module, x: torch.Tensor, layers: list[str] | None = None) -> list[LayerOutput]:
    """The outputs of `layers` (module names; default: each stage) for one normalised image
    x (1, C, H, W), in the order the model computes them. Outputs are copied as they are
    produced, so an in-place ReLU that follows does not change what is recorded."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image as (1, C, H, W), got {tuple(x.shape)}")
    modules = dict(model.named_modules())
    names = layers or default_layers(model)
    unknown = [n for n in names if n not in modules]
    if unknown:
        known = ", ".join(n for n in modules if n)
        raise ConfigError(f"the model has no layer {', '.join(map(repr, unknown))}; its layers are: {known}")
    recorded: list[LayerOutput] = []
    handles = []
    for n in names:
        m = modules[n]

        def hook(module, inputs, output, n=n):
            if isinstance(output, torch.Tensor) and output.ndim == 4:
                recorded.append(LayerOutput(n, type(module).__name__, output.detach()[0].clone().cpu()))

        handles.append(m.register_forward_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return recorded


def save_grid(layer: LayerOutput, path: str | Path, max_channels: int = 32, image: np.ndarray | None = None) -> Path:
    """A PNG grid of a layer's channels (each scaled on its own; shared colour range noted),
    titled with the layer name, module type and output shape."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = layer.output.float().numpy()
    c = min(len(maps), max_channels)
    extra = 1 if image is not None else 0
    cols = min(8, c + extra)
    rows = -(-(c + extra) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows + 0.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    cells = list(axes.flat)
    if image is not None:
        from cnnkit.explain.render import to_rgb

        cells[0].imshow(to_rgb(image), interpolation="nearest")
        cells[0].set_title("input", fontsize=8)
    lo, hi = float(maps.min()), float(maps.max())
    for i in range(c):
        ax = cells[i + extra]
        ax.imshow(maps[i], cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.set_title(f"ch {i}", fontsize=8)
    shown = f", channels 0-{c - 1} shown" if c < len(maps) else ""
    neg = float((maps < 0).mean())
    fig.suptitle(
        f"{layer.name} ({layer.kind}): output {'x'.join(map(str, layer.shape))}{shown}\n"
        f"values {lo:.2f} to {hi:.2f}, {neg:.0%} negative, {float((maps == 0).mean()):.0%} exactly zero",
        fontsize=9,
    )
    return save_figure(fig, path, dpi=90)


def featuremaps_command(
    checkpoint: str | os.PathLike,
    image: str | os.PathLike,
    *,
    layers: list[str] | None,
    steps: bool,
    list_only: bool,
    max_channels: int,
    out: str | os.PathLike | None,
) -> int:
    from cnnkit.checkpoint import resolve_checkpoint
    from cnnkit.inference import load

    clf = load(checkpoint)
    names = layers or default_layers(clf.model)
    if steps:
        modules = dict(clf.model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise ConfigError(
                f"the model has no layer {', '.join(map(repr, missing))}; its layers are: {', '.join(n for n in modules if n)}"
            )
        names = expand_steps(clf.model, names)
    images = clf.preprocess(image)
    recorded = feature_maps(clf.model, clf.normalize(images), names)
    out_dir = Path(out) if out is not None else resolve_checkpoint(checkpoint).parent / "featuremaps" / Path(image).stem
    lines = [f"{layer.name:<28} {layer.kind:<18} {'x'.join(map(str, layer.shape))}" for layer in recorded]
    if list_only:
        print("\n".join(lines))
        return 0
    names = [f"{i:02d}_{layer.name.replace('.', '_')}.png" for i, layer in enumerate(recorded)]
    with staged_folder(
        out_dir, hint="or write elsewhere with --out DIR"
    ) as stage:  # all grids or none: a signal or a full disk leaves the previous ones
        for i, (layer, name) in enumerate(zip(recorded, names)):
            save_grid(layer, stage / name, max_channels, image=images[0].numpy() if i == 0 else None)
    for line, name in zip(lines, names):
        print(f"{line}  -> {out_dir / name}")
    return 0
