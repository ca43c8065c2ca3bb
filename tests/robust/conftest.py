"""A tiny synthetic task with a robust feature and many weak (non-robust) ones, and models trained on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 4, 4) images in [0, 1], 2 classes. Pixel 0 is 0.5 -+ 0.3 (noise 0.2): mostly robust to eps 0.1.
    The other 15 pixels are 0.5 -+ 0.08 (noise 0.04): together far more predictive, but each flips under eps 0.1."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    sign = (y.float() * 2 - 1).view(-1, 1)
    x = 0.5 + sign * 0.08 + 0.04 * torch.randn(n, 16, generator=g)
    x[:, 0] = 0.5 + sign[:, 0] * 0.3 + 0.2 * torch.randn(n, generator=g)
    return x.clamp(0, 1).view(n, 1, 4, 4), y


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def identity(x: torch.Tensor) -> torch.Tensor:
    """The task's normalisation (a callable on 0-1 pixels): centred, unit-ish scale."""
    return (x - 0.5) / 0.1


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 100, perturb=None) -> nn.Module:
    """The hand-written loop the engine's hook contract describes: perturb_batch on the [0, 1] batch, then a step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is ~10x faster than two on a busy machine
    try:
        return _fit(model, x, y, steps, perturb)
    finally:
        torch.set_num_threads(threads)


def _fit(model, x, y, steps, perturb) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randperm(len(y), generator=gen)[:64]
        xb, yb = x[idx], y[idx]
        if perturb is not None:
            xb = perturb(model, identity, xb, yb, gen, step / steps)
        loss = F.cross_entropy(model(identity(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread is 10x faster than two on a busy machine (no spinning workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def task():
    return synthetic(512, 0), synthetic(256, 1)


@pytest.fixture(scope="session")
def plain_model(task):
    (x, y), _ = task
    return fit(linear_model(), x, y)
