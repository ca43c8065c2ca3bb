"""One DCGAN update (Goodfellow et al. 2014, algorithm 1, with the non-saturating generator loss): the
discriminator on a real and a generated batch, then the generator through the updated discriminator.
gan.loss hinge: D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G minimises -D(G(z)) (Lim & Ye 2017).
A conditional pair gets the real batch's labels, and the generated batch is drawn for the same labels."""

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


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss from its logits on a real and a generated batch (B,)."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
        fake, torch.zeros_like(fake)
    )


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss from D's logits on its batch (B,): non-saturating BCE or hinge's -D(G(z))."""
    if kind == "hinge":
        return -fake.mean()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # maximise log D(G(z))


def gan_step(
    g: nn.Module,
    d: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    amp: Callable[[], AbstractContextManager[Any]],
    labels: torch.Tensor | None = None,
    loss: str = "bce",
) -> dict[str, float]:
    """Update D then G once; real: (B, C, H, W) in [-1, 1], z: (B, latent), labels (B,) for a conditional
    pair. Returns STEP_KEYS: both losses, and D(x), D(G(z)) as probabilities (D's outputs before its update)."""
    with amp():
        fake = g(z, labels)  # (B, C, H, W)
        d_real = d(real, labels).float()  # (B,) logits
        d_fake = d(fake.detach(), labels).float()
        loss_d = d_loss(loss, d_real, d_fake)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()  # type: ignore[no-untyped-call]
    opt_d.step()
    with amp():
        loss_g = g_loss(loss, d(fake, labels).float())
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()  # type: ignore[no-untyped-call]
    opt_g.step()
    return {
        "loss_d": loss_d.item(),
        "loss_g": loss_g.item(),
        "d_real": torch.sigmoid(d_real).mean().item(),
        "d_fake": torch.sigmoid(d_fake).mean().item(),
    }
