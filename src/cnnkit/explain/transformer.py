"""Explaining a timm Vision Transformer: attention rollout, and Grad-CAM on its token layers.

Attention rollout (Abnar & Zuidema, 2020): a token's output mixes the others' by the attention
weights A_l (B, heads, N, N), and by the residual connection it also keeps itself. Per block:
average the heads, add the identity for the residual, renormalise each row to sum to 1; then
multiply the blocks' matrices, input to output: R = A_L' ... A_2' A_1'. Row 0 of R (the class
token, which the head classifies) says how much each input patch flowed into the prediction:
its patch entries are reshaped to the h x w patch grid, bilinearly upsampled to the image and
scaled to [0, 1] per image. It is class-agnostic (the same map whatever class is asked).

The weights are read by forward hooks on each attention block's `attn_drop` (identity in eval
mode), which sees the softmaxed matrix only on timm's unfused path: `fused_attn` is turned off
while recording and restored afterwards.

Grad-CAM on a token layer (a block's output, the last block's norm1 by default for cnnkit's
ViTs): pytorch-grad-cam with a reshape that drops the prefix (class) tokens and lays the
patch tokens out as a (B, D, h, w) map, so Grad-CAM's channel weights are the embedding dims.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError


def find_vit(model: nn.Module) -> nn.Module | None:
    """The timm VisionTransformer inside `model` (cnnkit's ViT wraps one), or None."""
    if "timm" not in sys.modules:  # no timm model was ever built: do not pay timm's import for a CNN
        return None
    from timm.models.vision_transformer import VisionTransformer

    return next((m for m in model.modules() if isinstance(m, VisionTransformer)), None)


def patch_grid(vit: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(h, w): the patch grid of input `x` (B, C, H, W); a side that does not divide is padded up by timm."""
    ph, pw = tuple(vit.patch_embed.patch_size)  # type: ignore[arg-type]
    return -(-x.shape[-2] // ph), -(-x.shape[-1] // pw)


def rollout(attentions: list[torch.Tensor]) -> torch.Tensor:
    """(B, N, N): the attention rollout of per-block weights (B, heads, N, N), given input to output."""
    if not attentions:
        raise ValueError("rollout needs the attention weights of at least one block")
    result: torch.Tensor | None = None
    for a in attentions:
        a = a.float().mean(1)  # (B, N, N): heads averaged
        a = a + torch.eye(a.shape[-1], device=a.device)  # the residual path
        a = a / a.sum(-1, keepdim=True)  # rows sum to 1 again
        result = a if result is None else a @ result
    assert result is not None
    return result


def record_attention(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The softmaxed attention weights (B, heads, N, N) of every timm attention block, input to output."""
    from timm.models.vision_transformer import Attention

    blocks = [m for m in model.modules() if isinstance(m, Attention)]
    seen: list[torch.Tensor] = []
    fused = [b.fused_attn for b in blocks]
    handles = [b.attn_drop.register_forward_hook(lambda _m, _i, out: seen.append(out.detach())) for b in blocks]
    try:
        for b in blocks:
            b.fused_attn = False  # type: ignore[misc]  # timm marks it Final; it is read at each forward
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for b, f in zip(blocks, fused):
            b.fused_attn = f  # type: ignore[misc]
    return seen


def rollout_maps(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """(B, H, W) in [0, 1]: the class token's attention rollout over the patches, at input size."""
    vit = find_vit(model)
    if vit is None:
        raise ConfigError(
            "--method rollout needs a Vision Transformer (vit_tiny, vit_tiny_224); "
            "for a CNN use --method gradcam (or attention for a CBAM model)"
        )
    model.eval()
    r = rollout(record_attention(model, x))  # (B, N, N)
    h, w = patch_grid(vit, x)
    cls = r[:, 0, vit.num_prefix_tokens :]  # (B, h*w): the class token's row, patches only
    grid = cls.reshape(len(x), 1, h, w)
    heat = F.interpolate(grid, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    heat = heat - heat.flatten(1).amin(1).view(-1, 1, 1)
    peak = heat.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
    return (heat / peak).cpu().numpy()


def token_reshape(vit: nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """pytorch-grad-cam's reshape_transform for `x`: tokens (B, N, D) or NHWC (B, h, w, D) -> (B, D, h, w)."""
    h, w = patch_grid(vit, x)

    def reshape(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4:  # the patch embedding with dynamic_img_size: NHWC
            return t.permute(0, 3, 1, 2)
        return t[:, t.shape[1] - h * w :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)

    return reshape


def token_gradcam(
    model: nn.Module, x: torch.Tensor, targets: list[int], layer: nn.Module, plus_plus: bool = False
) -> np.ndarray:
    """Grad-CAM(++) (B, H, W) at a ViT token layer, with pytorch-grad-cam."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    vit = find_vit(model)
    assert vit is not None
    cls = GradCAMPlusPlus if plus_plus else GradCAM
    with cls(model=model, target_layers=[layer], reshape_transform=token_reshape(vit, x)) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def is_token_layer(model: nn.Module, layer: nn.Module) -> bool:
    """A layer of a ViT that is not a convolution: its output is tokens, not a feature map."""
    return not isinstance(layer, nn.Conv2d) and find_vit(model) is not None
