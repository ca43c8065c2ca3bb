"""--preserve-colour: keep the content image's colours, take only the brightness from the result.

Luminance-only transfer (Gatys, Bethge, Hertzmann & Shechtman, "Preserving Color in Neural Artistic Style
Transfer", 2016), done after the optimisation: the output's Y channel (ITU-R BT.601 YCbCr, the JPEG
convention) with the content image's Cb and Cr. So the strokes and textures of the style stay, its palette
does not; the chroma of the output equals the content's wherever the RGB result needs no clipping.
"""

from __future__ import annotations

import torch

# BT.601 full range (JPEG): Y, Cb, Cr from RGB in [0, 1]; Cb and Cr centred on 0.5
_RGB_TO_YCBCR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_OFFSET = torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)


def rgb_to_ycbcr(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) Y, Cb, Cr in [0, 1]."""
    m = _RGB_TO_YCBCR.to(image)
    return torch.einsum("ij,bjhw->bihw", m, image) + _OFFSET.to(image)


def ycbcr_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_ycbcr` (exact up to float rounding), clipped to [0, 1]."""
    m = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(image)
    return torch.einsum("ij,bjhw->bihw", m, image - _OFFSET.to(image)).clamp(0, 1)


def preserve_colour(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised image's luminance with the content's chroma; both (B, 3, H, W) of the same size."""
    y = rgb_to_ycbcr(stylised)[:, :1]  # (B, 1, H, W)
    cbcr = rgb_to_ycbcr(content)[:, 1:]  # (B, 2, H, W)
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
