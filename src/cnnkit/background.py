"""Light or dark background: a grayscale model trained on light ink over a dark background
(MNIST) sees a digit drawn dark on white paper as something else entirely. This module
tells the two apart and inverts what does not match (`cnnkit predict --invert auto`)."""

from __future__ import annotations

import torch

INVERT_MODES = ("no", "auto", "yes")
DARK_MEAN = 0.35  # a grayscale training set whose mean pixel is below this had a dark background


def trained_on_dark(checkpoint: dict) -> bool:
    """The checkpoint is a one-channel model whose training images were mostly dark (MNIST's mean is 0.13)."""
    inp = checkpoint.get("input", {})
    return inp.get("channels") == 1 and bool(inp.get("mean")) and float(inp["mean"][0]) < DARK_MEAN


def light_background(x: torch.Tensor) -> torch.Tensor:
    """(B,) bool: images (uint8, B x C x H x W) whose border (the outer eighth of each side,
    at least one pixel) is on average lighter than mid-grey."""
    h, w = x.shape[-2:]
    bh, bw = max(1, h // 8), max(1, w // 8)
    border = torch.ones(h, w, dtype=torch.bool)
    border[bh : h - bh, bw : w - bw] = False
    return x.float()[..., border].flatten(1).mean(1) > 127.5


def fix_background(x: torch.Tensor, mode: str, checkpoint: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, mismatched, inverted): `mismatched` marks light-background images given to a model
    trained on dark ones; `mode` no leaves them, auto inverts those, yes inverts every image."""
    if mode not in INVERT_MODES:
        from cnnkit.errors import ConfigError

        raise ConfigError(f"--invert must be one of {', '.join(INVERT_MODES)}, got {mode!r}")
    none = torch.zeros(x.shape[0], dtype=torch.bool)
    mismatched = light_background(x) if trained_on_dark(checkpoint) and x.shape[0] else none
    invert = torch.ones_like(none) if mode == "yes" else (mismatched if mode == "auto" else none)
    if invert.any():
        x = x.clone()
        x[invert] = 255 - x[invert]
    return x, mismatched, invert


def background_warning(sources: list[str]) -> str:
    """The one-line warning for light-background images given, uninverted, to a dark-background model."""
    n = len(sources)
    which = f"{sources[0]}" if n == 1 else f"{n} images (e.g. {sources[0]})"
    return (
        f"{which} {'has' if n == 1 else 'have'} a light background, but this model was trained on light strokes over a dark background "
        "(as MNIST), so these predictions are unreliable; --invert auto inverts such images first (--invert yes inverts every image)"
    )
