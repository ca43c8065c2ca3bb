"""Wrapping torchvision / timm networks in cnnkit's model interface.

A `Backbone` keeps the library's network intact as `self.net` (so its state-dict keys are
the library's own, prefixed with ``net.``) and names, as data, which of its parts form
the feature extractor, the head and the classifier. Helpers here change a stem for small
inputs, adapt the first convolution to 1-channel images, and load published weights.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models.base import ClassifierBase

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(ClassifierBase):
    """A library network split into `forward_features` / `forward_head` by module paths.

    features: paths inside `net` applied in order to the image.
    head: paths inside `net`, or "gap" (global average pool + flatten), "relu", "forward_head"
        (a timm network's own head), applied to the features.
    classifier: path of the final nn.Linear (what `reset_classifier` replaces).
    stages: paths of the backbone's stages from input to output (for gradual unfreezing).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        features: list[str],
        head: list[str],
        classifier: str,
        stages: list[str],
        target_layer: str,
        pretrained_cfg: dict | None = None,
        input_transform: str | None = None,
    ):
        super().__init__()
        self.net = net
        self.feature_paths = list(features)
        self.head_paths = list(head)
        self.classifier_path = classifier
        self.stage_names = [f"net.{s}" for s in stages]
        self.target_layer = f"net.{target_layer}"
        self.pretrained_cfg = pretrained_cfg  # {"source", "mean", "std"} when published weights were loaded
        self.input_transform = input_transform  # name of a method of `net` applied to the image first, or None

    @property
    def num_features(self) -> int:
        return cast(nn.Linear, self.net.get_submodule(self.classifier_path)).in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_transform is not None:
            x = getattr(self.net, self.input_transform)(x)
        for path in self.feature_paths:
            x = self.net.get_submodule(path)(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        x = features
        for path in self.head_paths:
            if path == "gap":
                x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)  # (B, C, H, W) -> (B, C)
            elif path == "relu":
                x = torch.relu(x)
            elif path == "forward_head":  # a timm network's own head (pool, dropout, classifier)
                x = self.net.forward_head(x)
            else:
                x = self.net.get_submodule(path)(x)
        return x

    def reset_classifier(self, num_classes: int) -> None:
        old = self.net.get_submodule(self.classifier_path)
        set_submodule(self.net, self.classifier_path, nn.Linear(cast(nn.Linear, old).in_features, num_classes))


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def adapt_first_conv(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    """The same convolution taking `in_chans` channels. Pretrained RGB weights are kept:
    summed over colour for a 1-channel input (a grey image seen as R=G=B gives the same
    response), repeated and rescaled for more channels."""
    if conv.in_channels == in_chans:
        return conv
    pair = tuple[int, int]  # Conv2d holds 2-tuples; torch types them tuple[int, ...]
    new = type(conv)(
        in_chans,
        conv.out_channels,
        cast(pair, conv.kernel_size),
        stride=cast(pair, conv.stride),
        padding=cast("str | pair", conv.padding),
        dilation=cast(pair, conv.dilation),
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    if conv.weight.device.type != "meta":
        with torch.no_grad():
            w = conv.weight
            if in_chans == 1:
                new.weight.copy_(w.sum(1, keepdim=True))
            else:
                reps = -(-in_chans // w.shape[1])
                new.weight.copy_(w.repeat(1, reps, 1, 1)[:, :in_chans] * (w.shape[1] / in_chans))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
    return new


def torchvision_net(arch: str, num_classes: int, pretrained: bool | str, **kwargs) -> tuple[nn.Module, dict | None]:
    """`torchvision.models.<arch>`, with its published weights when `pretrained` (True means
    the default ones; a string names a weights enum member such as "IMAGENET1K_V1").
    Weights come through torchvision's own API and torch.hub cache ($TORCH_HOME/hub/checkpoints),
    so a pre-filled cache works offline."""
    import torchvision

    builder = getattr(torchvision.models, arch)
    if not pretrained:
        return builder(weights=None, num_classes=num_classes, **kwargs), None
    enum = torchvision.models.get_model_weights(arch)
    name = "DEFAULT" if pretrained is True else str(pretrained)
    try:
        weights = enum[name] if name != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise ConfigError(
            f"pretrained: {arch} has no weights {name!r}; choose from {', '.join(w.name for w in enum)}"
        ) from None
    try:
        net = builder(weights=weights, **kwargs)
    except (
        OSError,
        RuntimeError,
    ) as e:  # no network and nothing in the cache (URLError is an OSError), or a corrupt file
        from torch.hub import get_dir

        raise ConfigError(
            f"pretrained: could not load torchvision weights {arch} {weights.name} ({type(e).__name__}: {str(e).splitlines()[0][:160]}). "
            f"Offline, place the file {weights.url.rsplit('/', 1)[-1]} in {get_dir()}/checkpoints (set $TORCH_HOME to choose the folder)."
        ) from e
    cfg = {"source": f"torchvision:{arch}.{weights.name}", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    return net, cfg


def finish(model: Backbone, num_classes: int, pretrained_classes: int | None) -> Backbone:
    """Replace a pretrained head whose class count differs from the one asked for."""
    if pretrained_classes is not None and pretrained_classes != num_classes:
        model.reset_classifier(num_classes)
    return model
