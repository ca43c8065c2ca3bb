"""The honesty check: on data where only a small coloured patch decides the class, the
explanation must point at the patch.

Images are 24x24 RGB, dark uniform noise (0-89) everywhere, plus one 4x4 patch at a random
position: red for class 0, green for class 1. Nothing else carries the label. A small
cnnkit model (simple_cnn, width 8, 2 stages) is trained on 512 images for 60 steps
(a few seconds on a CPU) and must reach >= 95 % test accuracy. "Neighbourhood" is the
patch grown by 3 pixels on each side (10x10 = 17 % of the image at most), which allows for
the 2x coarser Grad-CAM grid at the target layer.

Thresholds (measured when written, on the 64 test images: share of the heat inside the
neighbourhood, median / minimum: Grad-CAM 0.94 / 0.87, Grad-CAM++ 0.94 / 0.87, integrated
gradients from a black baseline 0.90 / 0.77; decoy neighbourhood at most 0.04):
  - Grad-CAM, Grad-CAM++ and integrated gradients: >= 60 % of the heat inside the
    neighbourhood on >= 90 % of the test images;
  - the same maps scored against a decoy neighbourhood (the true one shifted by half the
    image) hold <= 20 % of the heat on >= 90 % of images, so the score can fail;
  - plain saliency and SmoothGrad are noisier (the gradient touches every background pixel;
    saliency holds a median 0.50 of its heat near the patch, SmoothGrad 0.19), so they get
    a weaker, stated check: their mean heat per pixel on the patch must be >= 3x
    (saliency; measured median 12.1, minimum 4.7) and >= 1.3x (SmoothGrad; measured median
    1.9, minimum 1.1) the mean outside the neighbourhood, on >= 75 % of the images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.explain.attribution import attribute, share_inside
from cnnkit.models import create_model

SIZE, PATCH, MARGIN = 24, 4, 3
MEAN, STD = 0.5, 0.25


def make_patch_data(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised images (n, 3, SIZE, SIZE), labels (n,), patch top-left corners (n, 2)."""
    x = torch.randint(0, 90, (n, 3, SIZE, SIZE), generator=g).float()
    y = torch.randint(0, 2, (n,), generator=g)
    corner = torch.randint(0, SIZE - PATCH + 1, (n, 2), generator=g)
    colours = torch.tensor([[230.0, 40.0, 40.0], [40.0, 230.0, 40.0]])
    for i in range(n):
        r, c = corner[i].tolist()
        x[i, :, r : r + PATCH, c : c + PATCH] = colours[y[i]][:, None, None]
    return (x / 255 - MEAN) / STD, y, corner


def masks(corner: torch.Tensor, margin: int, shift: int = 0) -> np.ndarray:
    out = np.zeros((len(corner), SIZE, SIZE), dtype=bool)
    for i, (r, c) in enumerate(corner.tolist()):
        out[i, max(0, r - margin) : r + PATCH + margin, max(0, c - margin) : c + PATCH + margin] = True
    return np.roll(out, (shift, shift), axis=(1, 2)) if shift else out


@pytest.fixture(scope="module")
def patch_model():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x_train, y_train, _ = make_patch_data(512, g)
    x_test, y_test, corner = make_patch_data(64, g)
    model = create_model("simple_cnn", num_classes=2, in_chans=3, width=8, stages=2, depth=1, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is fastest, and much faster on a busy machine
    try:
        for _ in range(60):
            idx = torch.randint(0, len(x_train), (32,), generator=g)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy >= 0.95, (
        f"the patch model did not learn (test accuracy {accuracy:.2f}); the honesty check needs a trained model"
    )
    return model, x_test, y_test, corner


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "integrated-gradients"])
def test_heat_lands_on_the_deciding_patch(patch_model, method):
    model, x, y, corner = patch_model
    black = torch.full_like(x, (0 - MEAN) / STD)
    heat = attribute(model, x, method, y, baseline=black if method == "integrated-gradients" else None)
    assert model.target_layer == "features.stage1"
    near = masks(corner, MARGIN)
    assert near.reshape(len(x), -1).mean(1).max() <= 0.18  # the neighbourhood is a small part of the image
    shares = np.array([share_inside(h, m) for h, m in zip(heat, near)])
    decoy = np.array([share_inside(h, m) for h, m in zip(heat, masks(corner, MARGIN, shift=SIZE // 2))])
    assert (shares >= 0.60).mean() >= 0.90, (
        f"{method}: share of heat near the patch per image: median {np.median(shares):.2f}, min {shares.min():.2f}"
    )
    assert (decoy <= 0.20).mean() >= 0.90, f"{method}: decoy shares median {np.median(decoy):.2f}"


@pytest.mark.parametrize("method, ratio", [("saliency", 3.0), ("smoothgrad", 1.3)])
def test_gradient_maps_are_denser_on_the_patch(patch_model, method, ratio):
    model, x, y, corner = patch_model
    heat = attribute(model, x, method, y)
    patch, near = masks(corner, 0), masks(corner, MARGIN)
    density = np.array([h[p].mean() / max(h[~n].mean(), 1e-9) for h, p, n in zip(heat, patch, near)])
    assert (density >= ratio).mean() >= 0.75, (
        f"{method}: patch / background heat density median {np.median(density):.2f}"
    )
