"""Vision Transformers (Dosovitskiy et al., 2020), timm's `VisionTransformer` in cnnkit's interface,
for the CNN-versus-ViT comparison (issue 19).

`vit_tiny`: ViT-Tiny's width (192), depth (12) and heads (3). Images are cut into patches of
`patch_size` pixels (default 4 up to 64 px, so a 32 px image is an 8x8 grid of 64 tokens as
in the small-image ViT papers; 16 above, the ImageNet ViT); every token attends to every
other, with no built-in locality or translation equivariance: what the network knows of
images it must learn from the data. `dynamic_img_size` interpolates the position embedding,
so any input size runs (28 px MNIST as 7x7 patches of 4; a side that does not divide by the
patch is zero-padded up to the next multiple).

`vit_tiny_224`: the same network at timm's `vit_tiny_patch16_224` configuration (224 px,
16 px patches: a 14x14 grid), randomly initialised (no weights are downloaded).

forward_features returns the token sequence (B, 1 + N, 192) after the final norm;
forward_head pools the class token and applies the classifier. `target_layer` is the last
block's first norm: Grad-CAM there sees the patch tokens laid out on the grid (explain/transformer.py);
`cnnkit explain --method rollout` shows the attention rollout instead.
"""

from __future__ import annotations

import torch

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


class ViT(ClassifierBase):
    def __init__(
        self,
        num_classes: int,
        in_chans: int,
        image_size: int,
        patch_size: int,
        embed_dim: int,
        depth: int,
        num_heads: int,
        drop_path: float = 0.0,
    ):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.net = VisionTransformer(
            img_size=image_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=num_classes,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            drop_path_rate=drop_path,
            dynamic_img_size=True,
            dynamic_img_pad=True,  # a side that does not divide by the patch is zero-padded up (28 px at patch 16)
        )
        self.num_features = embed_dim
        self.target_layer = f"net.blocks.{depth - 1}.norm1"  # (B, 1 + N, D): tokens, the grid for Grad-CAM

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)  # (B, 1 + N, D): class token + one per patch

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(features)  # the class token -> (B, num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.net.reset_classifier(num_classes)


@register_model(
    "vit_tiny",
    description="ViT-Tiny (2020), timm VisionTransformer: 192 wide, 12 blocks, 3 heads; patch 4 up to 64 px, else 16",
    default_input=(3, 32, 32),
)
def vit_tiny(
    num_classes: int = 1000,
    in_chans: int = 3,
    image_size: int | None = None,
    patch_size: int | None = None,
    depth: int = 12,
    drop_path: float = 0.1,
) -> ViT:
    size = image_size or 32
    patch = patch_size or (4 if size <= 64 else 16)
    return ViT(num_classes, in_chans, size, patch, embed_dim=192, depth=depth, num_heads=3, drop_path=drop_path)


@register_model(
    "vit_tiny_224",
    description="ViT-Tiny at 224 px (timm vit_tiny_patch16_224's configuration, random init): 16 px patches",
    default_input=(3, 224, 224),
)
def vit_tiny_224(
    num_classes: int = 1000,
    in_chans: int = 3,
    image_size: int = 224,
    depth: int = 12,
    drop_path: float = 0.1,
) -> ViT:
    return ViT(num_classes, in_chans, image_size, 16, embed_dim=192, depth=depth, num_heads=3, drop_path=drop_path)
