"""VGG-19 with the paper's layer names, from a torchvision VGG-19 state dict the user has.

Gatys et al. name VGG-19's convolutions conv<block>_<i> (conv1_1 ... conv5_4). Here the module
`conv4_2` is that convolution followed by its ReLU, so its output is the rectified response the
paper (Caffe, in-place ReLU) used. Only the `features.*` tensors are needed; a full torchvision
state dict (with its classifier) is accepted too. The input normalisation is ImageNet's.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnkit.errors import ConfigError

# torchvision's configuration "E": 3x3 convolution widths, "M" a 2x2 max pool
VGG19_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"]
VGG19_CFG += [512, 512, 512, 512, "M"]
CONTENT_LAYER = "conv4_2"  # the paper's content layer
STYLE_LAYERS = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]  # the paper's style layers


def _torchvision_conv_indices() -> list[int]:
    """Positions of the convolutions in torchvision's `features` (a ReLU after each conv, pools between)."""
    out, i = [], 0
    for v in VGG19_CFG:
        if v == "M":
            i += 1
        else:
            out.append(i)
            i += 2
    return out  # [0, 2, 5, 7, 10, ...]


def is_vgg19_state_dict(sd: dict[str, torch.Tensor]) -> bool:
    """Whether the tensors are torchvision VGG-19 features (16 convolutions at its positions)."""
    convs = sorted(
        int(k.split(".")[1])
        for k, v in sd.items()
        if k.startswith("features.") and k.endswith(".weight") and v.ndim == 4
    )
    return convs == _torchvision_conv_indices()


def vgg19_from_state_dict(sd: dict[str, torch.Tensor], source: str) -> nn.Sequential:
    """nn.Sequential(conv1_1, conv1_2, pool1, conv2_1, ...) holding the file's weights."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    block, i, c_in, pos = 1, 1, 3, 0
    for v in VGG19_CFG:
        if v == "M":
            layers[f"pool{block}"] = nn.MaxPool2d(2)  # (B, C, H/2, W/2)
            block, i, pos = block + 1, 1, pos + 1
            continue
        conv = nn.Conv2d(c_in, int(v), 3, padding=1)
        w, b = sd.get(f"features.{pos}.weight"), sd.get(f"features.{pos}.bias")
        if w is None or b is None or w.shape != conv.weight.shape or b.shape != (int(v),):
            raise ConfigError(
                f"--weights {source}: features.{pos} should be a {tuple(conv.weight.shape)} convolution with a bias "
                "(a torchvision VGG-19 state dict)"
            )
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)  # type: ignore[union-attr]  # Conv2d(bias=True) has one
        layers[f"conv{block}_{i}"] = nn.Sequential(conv, nn.ReLU())  # (B, v, H, W), rectified
        i, c_in, pos = i + 1, int(v), pos + 2
    return nn.Sequential(layers)
