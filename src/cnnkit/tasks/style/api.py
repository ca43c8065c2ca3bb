"""`stylize(content, style, out, settings)`: the whole verb as one library call.

Writes OUT (the content image's size), OUT_progress.png (a strip of intermediate results, unless
strip_every is 0) and OUT.json (the settings, the losses at the start and the end, the seconds).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import torch

from cnnkit.errors import ConfigError

from . import images
from .optimise import OPTIMIZERS, Losses, LossWeights, Objective, optimise

if TYPE_CHECKING:
    from .networks import StyleNet

INITS = ("content", "noise")


@dataclass(frozen=True)
class StyleSettings:
    size: int = 256
    steps: int = 300
    weights: LossWeights = field(default_factory=LossWeights)
    optimizer: str = "adam"  # bench_stylize: at 300 steps Adam lowers the style loss 19x, L-BFGS 11x
    init: str = "content"
    preserve_colour: bool = False
    seed: int = 0
    device: str = "auto"
    network: str | None = None  # --weights: None is the pretrained EfficientNet-Lite0
    layers: str | None = None  # --layers CONTENT:STYLE1,STYLE2,...
    strip_every: int | None = None  # None: about 6 frames; 0: no strip

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
        if self.init not in INITS:
            raise ConfigError(f"--init {self.init!r}: choose one of {', '.join(INITS)}")


def sidecar_paths(out: Path) -> tuple[Path, Path]:
    """OUT_progress.png and OUT.json beside OUT."""
    return out.with_name(f"{out.stem}_progress.png"), out.with_suffix(".json")


def stylize(
    content_path: str | Path,
    style_path: str | Path,
    out: str | Path,
    settings: StyleSettings = StyleSettings(),
    *,
    stream: TextIO | None = None,
    quiet: bool = False,
) -> dict[str, object]:
    """Repaint the content image in the style image's style; returns what OUT.json records."""
    from cnnkit.device import resolve_device

    from .colour import preserve_colour
    from .progress import StyleProgress

    settings.check()
    out, stream = Path(out), stream or sys.stdout
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")

    def say(text: str) -> None:
        if not quiet:
            print(text, file=stream, flush=True)

    content_full = images.load_rgb(content_path)  # (1, 3, H, W) at the file's size
    style_full = images.load_rgb(style_path)
    size = images.working_size(*images.hw(content_full), settings.size)
    _say_sizes(say, content_path, content_full, size, settings.size)
    device = resolve_device(settings.device)
    net, objective, content = _objective(settings, content_full, style_full, size, device)
    gen = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    init = content if settings.init == "content" else torch.rand(content.shape, generator=gen).to(device)
    every = settings.strip_every if settings.strip_every is not None else max(1, settings.steps // 6)
    frames = [init.cpu()]

    def on_step(step: int, losses: Losses, image: torch.Tensor) -> None:
        progress.update(step, losses)
        if every and (step % every == 0 or step == settings.steps):
            frames.append(image.cpu())

    say(
        f"stylize: {size[1]}x{size[0]} px, {settings.steps} {settings.optimizer} steps on {device}, features of {net.name}"
    )
    t0 = time.perf_counter()
    with StyleProgress(settings.steps, stream=stream, quiet=quiet) as progress:
        result, start, end = optimise(init, objective, settings.steps, settings.optimizer, on_step)
    seconds = time.perf_counter() - t0
    final = images.resize(result.cpu(), images.hw(content_full))  # back to the content's own size
    if settings.preserve_colour:
        final = preserve_colour(final, content_full)
    images.save_png(final, out)
    strip_path, json_path = sidecar_paths(out)
    if every:
        images.save_png(images.strip(frames), strip_path)
    record = {
        "content": str(content_path),
        "style": str(style_path),
        "output": str(out),
        "output_size": [int(final.shape[-1]), int(final.shape[-2])],
        "working_size": [size[1], size[0]],
        **_describe(net, settings, device),
        "losses_start": start.as_dict(),
        "losses_end": end.as_dict(),
        "seconds": round(seconds, 3),
        "progress_strip": str(strip_path) if every else None,
    }
    from cnnkit.rundir import atomic_write_text

    atomic_write_text(json_path, json.dumps(record, indent=2) + "\n")
    say(
        f"style loss {start.style:.4g} -> {end.style:.4g}, content loss {start.content:.4g} -> {end.content:.4g} "
        f"in {seconds:.1f} s; wrote {out}" + (f", {strip_path.name}" if every else "") + f", {json_path.name}"
    )
    return record


def _objective(
    settings: StyleSettings,
    content_full: torch.Tensor,
    style_full: torch.Tensor,
    size: tuple[int, int],
    device: torch.device,
) -> tuple[StyleNet, Objective, torch.Tensor]:
    """The feature network, the losses against the content and style images at the working size, and
    the content image there."""
    from .features import FeatureExtractor
    from .networks import load_network

    net = load_network(settings.network, settings.layers, device)
    extractor = FeatureExtractor(net.model, [net.content_layer, *net.style_layers], net.mean, net.std, net.channels)
    extractor.to(device)
    content = images.resize(content_full, size).to(device)
    style = images.resize(style_full, images.working_size(*images.hw(style_full), settings.size)).to(device)
    return net, Objective(extractor, net.content_layer, net.style_layers, content, style, settings.weights), content


def _describe(net: StyleNet, settings: StyleSettings, device: torch.device) -> dict[str, object]:
    return {
        "network": net.name,
        "content_layer": net.content_layer,
        "style_layers": net.style_layers,
        "settings": {**asdict(settings), "device": str(device)},
    }


def _say_sizes(
    say: Callable[[str], None], path: str | Path, image: torch.Tensor, size: tuple[int, int], longest: int
) -> None:
    h, w = image.shape[-2:]
    if max(h, w) > longest:
        say(f"{path}: {w}x{h} resized to {size[1]}x{size[0]} (--size {longest}); the result is scaled back to {w}x{h}")
    elif min(h, w) < images.MIN_SIDE:
        say(f"{path}: {w}x{h} is tiny: stylised at {size[1]}x{size[0]}, written at {w}x{h}")
