"""Filters: first-layer kernels as pictures, and what excites deeper channels.

Deeper channels have no picture of their own, so we synthesise one (activation
maximisation, Erhan et al. 2009; Olah et al. 2017): start from faint noise and climb the
gradient of the channel's mean activation, with the usual regularisers: an L2 penalty on
the image, a total-variation penalty for smoothness, and random jitter each step.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.explain.render import save_figure
from cnnkit.io_safety import writing


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise ConfigError("the model has no Conv2d layer")


def kernel_images(conv: nn.Conv2d) -> np.ndarray:
    """(out, k, k, 3) for RGB input or (out, k, k) otherwise, each kernel scaled to [0, 1]
    symmetrically around 0 (0.5 = a zero weight), so the sign of each weight stays readable."""
    w = conv.weight.detach().float().cpu()
    scale = w.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    w = 0.5 + 0.5 * w / scale
    if w.shape[1] == 3:
        return w.permute(0, 2, 3, 1).numpy()
    return w.mean(1).numpy()


def _last_leaf(module: nn.Module) -> nn.Module:
    leaves = [m for m in module.modules() if not list(m.children())]
    return leaves[-1] if leaves else module


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def maximize_activation(
    model: nn.Module,
    layer: str,
    channels: list[int],
    input_shape: tuple[int, int, int],
    *,
    steps: int = 128,
    lr: float = 0.05,
    l2: float = 1e-3,
    tv: float = 0.05,
    jitter: int = 2,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One synthetic input per channel (in the model's normalised input space), optimised to
    raise that channel's mean activation at `layer` (taken before the layer's final ReLU,
    if it ends with one). Returns (images (N, C, H, W), the
    activations at the start, the activations at the end)."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ConfigError(f"the model has no layer {layer!r}; its layers are: {', '.join(n for n in modules if n)}")
    model.eval()
    was_trainable = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(len(channels), *input_shape, generator=g)).requires_grad_(True)
    index = torch.tensor(channels)
    store: dict[str, torch.Tensor] = {}
    last = _last_leaf(modules[layer])
    if isinstance(last, nn.ReLU):
        # climb the value going into the final ReLU: a channel that starts below zero would
        # otherwise have no gradient at all ("dead" for this input)
        handle = last.register_forward_pre_hook(lambda m, i: store.__setitem__("out", i[0].clone()))
    else:
        handle = modules[layer].register_forward_hook(lambda m, i, o: store.__setitem__("out", o))

    def activation(inp: torch.Tensor) -> torch.Tensor:
        model(inp)
        out = store["out"]
        if out.shape[1] <= int(index.max()):
            raise ConfigError(f"layer {layer!r} has {out.shape[1]} channels; asked for channel {int(index.max())}")
        return out[torch.arange(len(channels)), index].flatten(1).mean(1)  # (N,)

    try:
        with torch.no_grad():
            start = activation(x).clone()
        opt = torch.optim.Adam([x], lr=lr)
        with torch.enable_grad():  # also inside a caller's torch.no_grad()
            for _ in range(steps):
                dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=g).tolist() if jitter else (0, 0)
                act = activation(torch.roll(x, shifts=(dy, dx), dims=(2, 3)))
                loss = -act.sum() + l2 * (x**2).sum() + tv * len(channels) * total_variation(x)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            end = activation(x).clone()
    finally:
        handle.remove()
        for p, flag in zip(model.parameters(), was_trainable):
            p.requires_grad_(flag)
    return x.detach(), start, end


def _grid(pictures: list[np.ndarray], captions: list[str], title: str, path: Path, cmap: str | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(pictures)
    cols = min(8, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.5 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, pic, cap in zip(axes.flat, pictures, captions):
        ax.imshow(pic, cmap=cmap if pic.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(cap, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=90)


def save_kernels(model: nn.Module, path: str | Path) -> Path:
    name, conv = first_conv(model)
    pics = kernel_images(conv)
    k = conv.weight.shape
    colour = "RGB" if k[1] == 3 else ("grey" if k[1] == 1 else f"mean of {k[1]} input channels")
    title = (
        f"{name}: {k[0]} kernels of {k[2]}x{k[3]} ({colour}; grey 0.5 = weight 0, dark = negative, light = positive)"
        if k[1] != 3
        else f"{name}: {k[0]} kernels of {k[2]}x{k[3]} (RGB, each scaled on its own)"
    )
    return _grid(list(pics), [f"{i}" for i in range(len(pics))], title, Path(path), "gray")


def save_activation_maximisation(
    clf, layer: str, path: str | Path, channels: int = 16, steps: int = 128
) -> tuple[Path, torch.Tensor, torch.Tensor]:
    """PNG grid of synthetic inputs that excite the first `channels` channels of `layer`."""
    modules = dict(clf.model.named_modules())
    if layer not in modules:
        raise ConfigError(f"the model has no layer {layer!r}; its layers are: {', '.join(n for n in modules if n)}")
    probe: dict[str, torch.Tensor] = {}
    h = modules[layer].register_forward_hook(lambda m, i, o: probe.__setitem__("out", o))
    with torch.no_grad():
        clf.model(torch.zeros(1, clf.channels, *clf.size))  # to learn the layer's channel count
    h.remove()
    count = min(channels, probe["out"].shape[1])
    x, start, end = maximize_activation(clf.model, layer, list(range(count)), (clf.channels, *clf.size), steps=steps)
    mean = clf.normalize.mean.view(1, -1, 1, 1) / 255
    std = clf.normalize.std.view(1, -1, 1, 1) / 255
    img = (x * std + mean).clamp(0, 1)  # back to pixel values
    pics = [im.permute(1, 2, 0).numpy() if im.shape[0] == 3 else im[0].numpy() for im in img]
    caps = [f"ch {i}: {float(a):.2f}" for i, a in enumerate(end)]
    title = f"{layer}: inputs that excite each channel (activation maximisation, {steps} steps; the channel's mean activation shown)"
    return _grid(pics, caps, title, Path(path), "gray"), start, end


def filters_command(
    checkpoint: str | os.PathLike, *, layer: str | None, channels: int, steps: int, out: str | os.PathLike | None
) -> int:
    from cnnkit.checkpoint import resolve_checkpoint
    from cnnkit.inference import load

    clf = load(checkpoint)
    out_dir = Path(out) if out is not None else resolve_checkpoint(checkpoint).parent / "filters"
    if layer is None:
        path = out_dir / "first_layer_kernels.png"
        with writing(
            path, hint="or write elsewhere with --out DIR"
        ):  # one file, replaced atomically (render.save_figure)
            print(f"wrote {save_kernels(clf.model, path)}")
        return 0
    path = out_dir / f"{layer.replace('.', '_')}_activation_max.png"
    with writing(path, hint="or write elsewhere with --out DIR"):
        path, start, end = save_activation_maximisation(clf, layer, path, channels, steps)
    print(
        f"{layer}: mean activation of channels 0-{len(end) - 1} rose from {float(start.mean()):.3f} (faint noise) to {float(end.mean()):.3f}"
    )
    print(f"wrote {path}")
    return 0
