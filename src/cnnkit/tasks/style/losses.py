"""The losses of Gatys et al. (2016), written plainly, plus total variation.

Feature maps are (B, C, H, W). Each loss is a mean, so its size does not depend on the image's
size: the same weights work at 64 px and at 512 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """G[b, i, j] = sum over positions p of F[b, i, p] * F[b, j, p], divided by C*H*W.

    (B, C, H, W) -> (B, C, C). The division (the paper's 1 / (4 N^2 M^2) folded into the weight)
    makes layers of different width and resolution comparable."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)  # (B, C, N) with N = H*W positions
    gram = torch.bmm(flat, flat.transpose(1, 2))  # (B, C, C): channel co-activations over all positions
    return gram / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the feature maps at the content layer (same shape)."""
    return F.mse_loss(features, target)


def style_loss(features: list[torch.Tensor], target_grams: list[torch.Tensor]) -> torch.Tensor:
    """Mean over the style layers of the mean squared difference of Gram matrices (equal layer weights,
    as in the paper's w_l = 1/5)."""
    losses = [F.mse_loss(gram_matrix(f), g) for f, g in zip(features, target_grams, strict=True)]
    return torch.stack(losses).mean()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (B, C, H, W): small for smooth images."""
    dh = image[:, :, 1:, :] - image[:, :, :-1, :]  # (B, C, H-1, W)
    dw = image[:, :, :, 1:] - image[:, :, :, :-1]  # (B, C, H, W-1)
    return dh.pow(2).mean() + dw.pow(2).mean()
