"""The U-Net paper's weight map (Ronneberger et al. 2015, eq. 2) for touching objects, e.g. cells
separated by thin membranes:

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

w_c balances the class frequencies (the class weights, else 1), d1 and d2 are the distances to the
nearest and the second nearest object. Objects are the connected components (4-connected) of the
pixels of any class but the background (class 0) and the ignore label; the border term is put on
background pixels only (the gaps between objects, where it peaks). Paper: w0 = 10, sigma = 5 px.

Each object's distance transform (scipy.ndimage) is computed inside its bounding box grown by the
reach of the term (beyond it exp(...) < 1e-4 w0), so a 512 x 512 EM slice takes tens of ms. Maps
are cached by the mask's bytes (`BorderWeights`): without augmentation each mask is computed once.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np
import torch
from scipy import ndimage

from cnnkit.tasks.segment.task import IGNORE_INDEX

BACKGROUND = 0


def border_weights(
    mask: np.ndarray, w0: float = 10.0, sigma: float = 5.0, class_weights: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) float32 weights of one mask (H, W) of class indices; ignored pixels get 0."""
    valid = mask != IGNORE_INDEX
    w: np.ndarray
    if class_weights is None:
        w = valid.astype(np.float32)
    else:
        w = np.where(valid, np.asarray(class_weights, np.float32)[np.where(valid, mask, 0)], 0).astype(np.float32)
    objects, n = ndimage.label(valid & (mask != BACKGROUND))
    if n < 2 or w0 == 0:
        return w
    reach = math.ceil(sigma * math.sqrt(2 * math.log(1e4))) + 1  # d1 + d2 beyond it: term < 1e-4 w0
    d1 = np.full(mask.shape, np.inf, np.float32)
    d2 = np.full(mask.shape, np.inf, np.float32)
    for i, box in enumerate(ndimage.find_objects(objects), start=1):
        grown = tuple(slice(max(s.start - reach, 0), min(s.stop + reach, size)) for s, size in zip(box, mask.shape))
        dist = ndimage.distance_transform_edt(objects[grown] != i).astype(np.float32)  # 0 on object i
        a, b = d1[grown], d2[grown]
        d2[grown] = np.where(dist < a, a, np.minimum(b, dist))
        d1[grown] = np.minimum(a, dist)
    gap = valid & (mask == BACKGROUND) & np.isfinite(d2)
    w[gap] += w0 * np.exp(-((d1[gap] + d2[gap]) ** 2) / (2 * sigma**2))
    return w


class BorderWeights:
    """`weights(targets (B, H, W)) -> (B, H, W)` float maps on the targets' device, each mask's map
    computed once and kept (least recently used dropped beyond `max_pixels` cached pixels)."""

    def __init__(
        self, w0: float = 10.0, sigma: float = 5.0, class_weights: torch.Tensor | None = None, max_pixels: int = 2**26
    ):
        self.w0, self.sigma, self.max_pixels = w0, sigma, max_pixels
        self.class_weights = None if class_weights is None else class_weights.detach().cpu().float().numpy()
        self.cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.pixels = 0
        self.computed = 0  # maps computed (not found in the cache)

    def one(self, mask: np.ndarray) -> torch.Tensor:
        key = hashlib.blake2b(mask.tobytes() + str(mask.shape).encode(), digest_size=16).digest()
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.move_to_end(key)
            return hit
        out = torch.from_numpy(border_weights(mask, self.w0, self.sigma, self.class_weights))
        self.computed += 1
        self.cache[key] = out
        self.pixels += out.numel()
        while self.pixels > self.max_pixels and len(self.cache) > 1:
            self.pixels -= self.cache.popitem(last=False)[1].numel()
        return out

    def __call__(self, targets: torch.Tensor) -> torch.Tensor:
        masks = targets.detach().cpu().numpy()
        return torch.stack([self.one(m) for m in masks]).to(targets.device)
