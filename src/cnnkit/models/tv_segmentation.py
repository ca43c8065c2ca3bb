"""torchvision's segmentation networks as registry models, for comparison with the plain U-Net:
DeepLabV3 (atrous spatial pyramid pooling, Chen et al. 2017) on a MobileNetV3-Large backbone,
and FCN (Long et al. 2015) on a ResNet-50 backbone. No weights (none are reachable here); any
channel count (the stem convolution is rebuilt for it). `forward_features` is the backbone's
coarse map (a dilated backbone: 1/8 to 1/16 of the input's side), `forward_head` the per-class
logits at that resolution, and `forward` upsamples them bilinearly to the input's size, as
torchvision does. Train them with batches of two or more images (batch norm after global pooling)."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


def _replace_stem(module: nn.Module, in_chans: int) -> None:
    """The first 3-channel convolution of `module` rebuilt for `in_chans` channels (same shape otherwise)."""
    for name, child in module.named_modules():
        if isinstance(child, nn.Conv2d) and child.in_channels == 3:
            parent = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            shape: dict[str, Any] = {"kernel_size": child.kernel_size, "stride": child.stride, "padding": child.padding}
            new = nn.Conv2d(in_chans, child.out_channels, **shape, bias=child.bias is not None)
            setattr(parent, name.rsplit(".", 1)[-1], new)
            return
    raise ValueError("no 3-channel stem convolution found")


class TorchvisionSegmenter(ClassifierBase):
    def __init__(self, net: nn.Module, in_chans: int):
        super().__init__()
        if in_chans != 3:
            _replace_stem(cast(nn.Module, net.backbone), in_chans)
        self.backbone, self.classifier = net.backbone, net.classifier

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)["out"]  # (B, C, h, w), h and w 1/8 to 1/16 of H and W

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)  # (B, num_classes, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.forward_head(self.forward_features(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)  # (B, K, H, W)

    def reset_classifier(self, num_classes: int) -> None:
        head = cast(nn.Sequential, self.classifier)
        head[-1] = nn.Conv2d(cast(nn.Conv2d, head[-1]).in_channels, num_classes, 1)


@register_model(
    "deeplabv3_mobilenet",
    description="DeepLabV3 (2017) on MobileNetV3-Large, torchvision's; segmentation",
    default_input=(3, 256, 256),
    task="segment",
)
def deeplabv3_mobilenet(num_classes: int = 21, in_chans: int = 3) -> TorchvisionSegmenter:
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    net = deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    model = TorchvisionSegmenter(net, in_chans)
    model.target_layer = "backbone"
    return model


@register_model(
    "fcn_resnet50",
    description="FCN (2015) on a dilated ResNet-50, torchvision's; segmentation",
    default_input=(3, 256, 256),
    task="segment",
)
def fcn_resnet50(num_classes: int = 21, in_chans: int = 3) -> TorchvisionSegmenter:
    from torchvision.models.segmentation import fcn_resnet50 as tv_fcn

    net = tv_fcn(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
    model = TorchvisionSegmenter(net, in_chans)
    model.target_layer = "backbone"
    return model
