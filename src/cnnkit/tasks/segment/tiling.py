"""Segmenting images larger than the network was trained on: overlapping tiles blended with a window,
and test-time augmentation (flip, or d4: the 8 rotations and mirrors).

`tiled_mask(probs_fn, image, tile, overlap)` runs `probs_fn` on tiles of `tile` x `tile` pixels that
overlap by at least `overlap` pixels, and blends their class probabilities with a window that ramps
linearly from ~0 to 1 across the overlap (no ramp where a tile touches the image's border), so every
pixel is a weighted mean of the tiles that cover it and seams fade out. Rows of tiles are consumed
top to bottom and each band of finished rows is turned into class indices at once: memory grows with
`K x tile x width` plus the uint8 mask, never with `K x height x width` (a 20000 x 20000 slide fits).

`probabilities(model, x, tta)`: softmax over the classes; with tta "flip" the mean of the image's and
its mirror image's (flipped back), as eval.tta flip does for classifiers; "d4" averages all 8 views."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

ProbsFn = Callable[[torch.Tensor], torch.Tensor]  # uint8 tile (1, C, h, w) -> probabilities (1, K, h, w)
TTA_MODES = ("none", "flip", "d4")


@torch.no_grad()
def probabilities(model: torch.nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """(B, K, H, W) softmax of model(x); tta "flip": averaged with the horizontally mirrored image's; "d4": with
    all 8 rotations by 90 degrees and their mirrors, each mapped back before the average."""
    if tta not in TTA_MODES:
        raise ValueError(f"tta: {tta!r} is not one of {', '.join(TTA_MODES)} for segmentation")
    p: torch.Tensor = model(x).float().softmax(1)
    if tta == "flip":
        p = (p + model(x.flip(-1)).float().softmax(1).flip(-1)) / 2
    elif tta == "d4":
        for k in range(4):
            for mirror in (False, True):
                if k == 0 and not mirror:
                    continue  # the identity, already in p
                v = x.flip(-1) if mirror else x
                q = model(v.rot90(k, (-2, -1))).float().softmax(1).rot90(-k, (-2, -1))
                p = p + (q.flip(-1) if mirror else q)
        p = p / 8
    return p


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile offsets covering [0, length): a stride of tile - overlap, the last tile flush with the end."""
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    return [*range(0, length - tile, stride), length - tile]


def ramp(size: int, overlap: int, first: bool, last: bool) -> torch.Tensor:
    """(size,) window: rising over `overlap` pixels at the start unless `first`, falling at the end unless `last`."""
    w = torch.ones(size)
    n = min(overlap, size // 2)
    if n > 0:
        up = torch.arange(1, n + 1, dtype=torch.float32) / (n + 1)  # strictly positive: every pixel counts
        if not first:
            w[:n] = torch.minimum(w[:n], up)
        if not last:
            w[-n:] = torch.minimum(w[-n:], up.flip(0))
    return w


def bands(probs_fn: ProbsFn, image: torch.Tensor, tile: int, overlap: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(top row, blended probabilities (K, rows, W)) of consecutive finished bands of the image (C, H, W);
    each band is a view of the one accumulator, overwritten when the next is asked for (copy it to keep it)."""
    _, h, w = image.shape
    th, tw = min(tile, h), min(tile, w)
    ys, xs = starts(h, th, overlap), starts(w, tw, overlap)
    acc: torch.Tensor | None = None  # (K, th, W): the rows from the current tile row's top
    wsum = torch.zeros(th, w)
    for r, y in enumerate(ys):
        wy = ramp(th, overlap, r == 0, r == len(ys) - 1)
        for c, x in enumerate(xs):
            p = probs_fn(image[:, y : y + th, x : x + tw].unsqueeze(0))[0].float().cpu()  # (K, th, tw)
            if acc is None:
                acc = torch.zeros(p.shape[0], th, w)
            win = wy[:, None] * ramp(tw, overlap, c == 0, c == len(xs) - 1)[None, :]
            acc[:, :, x : x + tw] += p * win
            wsum[:, x : x + tw] += win
        assert acc is not None  # at least one tile per row
        done = (ys[r + 1] - y) if r + 1 < len(ys) else th  # rows no later tile reaches
        band = acc[:, :done]
        band /= wsum[:done]  # in place: a view, valid until the next band
        yield y, band
        keep = th - done  # the rows the next tile row adds to, moved to the top (in place: no second buffer)
        acc[:, :keep] = acc[:, done:].clone()
        acc[:, keep:] = 0
        wsum[:keep] = wsum[done:].clone()
        wsum[keep:] = 0


def tiled_mask(probs_fn: ProbsFn, image: torch.Tensor, tile: int, overlap: int) -> np.ndarray:
    """(H, W) uint8 class indices of the image (C, H, W), segmented tile by tile."""
    out = np.zeros(image.shape[-2:], np.uint8)
    for y, p in bands(probs_fn, image, tile, overlap):
        out[y : y + p.shape[1]] = p.argmax(0).to(torch.uint8).numpy()
    return out


def tiled_probabilities(probs_fn: ProbsFn, image: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """(K, H, W) blended probabilities (for images small enough to hold them: tests, inspection)."""
    return torch.cat([p.clone() for _, p in bands(probs_fn, image, tile, overlap)], 1)
