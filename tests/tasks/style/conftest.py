"""Shared pieces of the style-transfer tests: small synthetic images and a tiny cnnkit checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour 'photo' (H, W, 3) uint8: gradients and a bright disc, so it compresses well."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    disc = ((y - 0.5) ** 2 + (x - 0.4) ** 2 < 0.08).astype(float)
    rng = np.random.default_rng(seed)
    r, g, b = x * 0.8 + 0.1 * disc, 0.3 + 0.5 * y, 0.6 - 0.4 * x + 0.3 * disc
    arr = np.stack([r, g, b], -1) + rng.normal(0, 0.02, (h, w, 3))
    return (np.clip(arr, 0, 1) * 255).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    """A 'style': red/blue diagonal stripes, 4 px period."""
    y, x = np.mgrid[0:h, 0:w]
    on = ((x + y) // 2) % 2 == 0
    arr = np.zeros((h, w, 3), np.uint8)
    arr[on] = (220, 30, 30)
    arr[~on] = (20, 40, 200)
    return arr


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(photo(40, 48)).save(content)
    Image.fromarray(stripes(40, 40)).save(style)
    return content, style


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 3-stage simple_cnn saved as a cnnkit checkpoint (no training)."""
    from cnnkit.checkpoint import atomic_save, make_checkpoint
    from cnnkit.models import create_model

    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=2, in_chans=3, width=8, stages=3, depth=1)
    ckpt = make_checkpoint(
        model,
        class_names=["a", "b"],
        channels=3,
        size=(32, 32),
        mean=[0.5, 0.5, 0.5],
        std=[0.25, 0.25, 0.25],
        config={},
        dataset="synthetic",
        epoch=0,
        metrics={},
    )
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    atomic_save(ckpt, path)
    return path
