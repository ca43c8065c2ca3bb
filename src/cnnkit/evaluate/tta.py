"""Test-time augmentation: average the softmax over flipped / shifted views (the data area's kernels);
`predict.predict_logits(..., tta=MODE)` calls it."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.data.augment import hflip, translate
from cnnkit.data.preprocess import Normalize, batches
from cnnkit.data.types import Split
from cnnkit.device import autocast
from cnnkit.errors import ConfigError


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """The views of a uint8 batch that `mode` (eval.tta: none | flip | flip+shift | d4) averages over (the identity
    first). d4: the 4 rotations by 90 degrees of the image and of its mirror (square images only)."""
    n = x.shape[0]
    if mode == "d4":
        if x.shape[-1] != x.shape[-2]:
            raise ConfigError(
                f"eval.tta d4 rotates images by 90 degrees: it needs square inputs, got {tuple(x.shape[-2:])}"
            )
        return [v.rot90(k, (-2, -1)) for v in (x, x.flip(-1)) for k in range(4)]
    views = [x]
    if mode in ("flip", "flip+shift"):
        views.append(hflip(x, torch.ones(n, dtype=torch.bool)))
    if mode == "flip+shift":
        for dy, dx in ((1, 1), (-1, -1)):
            shifts = torch.tensor([[dy, dx]]).expand(n, 2)
            views += [translate(v, shifts) for v in views[:2]]
    return views


@torch.no_grad()
def predict_logits_tta(
    model: nn.Module,
    data: Split,
    *,
    normalize: Normalize,
    mode: str = "flip",
    batch_size: int = 500,
    precision: str = "fp32",
    multi_label: bool = False,
) -> torch.Tensor:
    """Log of the mean softmax over the views: usable as logits (argmax, cross-entropy). (N, classes), CPU.
    `multi_label`: the mean sigmoid of each label instead, returned as its logit."""
    model.eval()
    out = []
    for idx in batches(len(data), batch_size):
        probs: torch.Tensor | None = None
        views = tta_views(data.images[idx], mode)
        for v in views:
            with autocast(normalize.device, precision):
                z = model(normalize(v)).float()
                p = (z.sigmoid() if multi_label else z.softmax(1)).cpu()
            probs = p if probs is None else probs + p
        assert probs is not None  # tta_views gives at least the image itself
        mean = probs / len(views)
        out.append(torch.logit(mean, eps=1e-7) if multi_label else mean.clamp_min(1e-12).log())
    return torch.cat(out) if out else torch.zeros(0, 0)
