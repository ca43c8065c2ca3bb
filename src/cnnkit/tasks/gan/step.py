"""One DCGAN update (Goodfellow et al. 2014, algorithm 1, with the non-saturating generator loss): the
discriminator on a real and a generated batch, then the generator through the updated discriminator."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

STEP_KEYS = ("loss_d", "loss_g", "d_real", "d_fake")  # the numbers one step reports (means over the batch)


def to_tanh_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [-1, 1], the generator's tanh range."""
    return images.float() / 127.5 - 1.0


def gan_step(
    g: nn.Module,
    d: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    amp: Callable[[], AbstractContextManager[Any]],
) -> dict[str, float]:
    """Update D then G once; real: (B, C, H, W) in [-1, 1], z: (B, latent). Returns STEP_KEYS: both losses,
    and D(x), D(G(z)) as probabilities (D's outputs before its update)."""
    ones = torch.ones(real.shape[0], device=real.device)
    zeros = torch.zeros_like(ones)
    with amp():
        fake = g(z)  # (B, C, H, W)
        d_real = d(real).float()  # (B,) logits
        d_fake = d(fake.detach()).float()
        loss_d = F.binary_cross_entropy_with_logits(d_real, ones) + F.binary_cross_entropy_with_logits(d_fake, zeros)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()  # type: ignore[no-untyped-call]
    opt_d.step()
    with amp():
        loss_g = F.binary_cross_entropy_with_logits(d(fake).float(), ones)  # maximise log D(G(z))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()  # type: ignore[no-untyped-call]
    opt_g.step()
    return {
        "loss_d": loss_d.item(),
        "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(d_real).mean().item(),
        "d_fake": torch.sigmoid(d_fake).mean().item(),
    }
