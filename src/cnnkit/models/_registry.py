"""The model registry: `@register_model` fills it, `create_model` builds from it.

`create_model` also accepts a layer spec in place of a name
(``create_model("conv(32,3)-bn-relu-gap-fc(10)")``): it is routed to the registered
model ``spec`` (see `cnnkit.models.spec`), so spec models are checkpointable like any other.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    default_input: tuple[int, int, int]  # (C, H, W) the model is meant for
    pretrained: str = ""  # where published weights come from ("" when there are none)
    family: str = ""  # the module that defines it (lenet, vgg, resnet...)
    task: str = "classify"  # classify: (B, num_classes) logits | segment: (B, num_classes, H, W), one per pixel


_MODELS: dict[str, ModelInfo] = {}

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

# arguments that say where the starting weights come from: they are not part of how the
# model is built, so a checkpoint never records them (rebuilding from it must not download)
WEIGHT_ARGS = ("pretrained",)


def register_model(
    name: str | None = None,
    *,
    description: str = "",
    default_input: tuple[int, int, int] = (1, 28, 28),
    pretrained: str = "",
    task: str = "classify",
) -> Callable[[Builder], Builder]:
    """Register a builder `fn(num_classes, in_chans, **kwargs) -> nn.Module` under `name`."""

    def wrap(fn: Builder) -> Builder:
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        family = fn.__module__.rsplit(".", 1)[-1]
        c, h, w = default_input
        _MODELS[key] = ModelInfo(key, fn, doc, (c, h, w), pretrained, family, task)
        return fn

    return wrap


def _ensure_builtins() -> None:
    from cnnkit.models import (  # noqa: F401  (registration on import)
        alexnet,
        convnext,
        densenet,
        efficientnet,
        fastnet,
        googlenet,
        lenet,
        mobilenet,
        resnet,
        simple,
        spec,
        tv_segmentation,
        unet,
        unet_lite0,
        vgg,
        vit,
    )


def list_models(task: str | None = None) -> list[str]:
    """Registered names; `task` ("classify" / "segment") keeps that kind only."""
    _ensure_builtins()
    return sorted(k for k, v in _MODELS.items() if task is None or v.task == task)


def looks_like_spec(name: str) -> bool:
    """A layer spec ("conv(32,3)-bn-relu-...") rather than a model name (such as a mistyped
    "resnet-18", which gets the unknown-model error with its suggestion)."""
    import re

    from cnnkit.models.spec import FORMS

    if not isinstance(name, str) or name in _MODELS or ("(" not in name and "-" not in name):
        return False
    first = re.match(r"\s*([A-Za-z_]\w*)", name)
    return first is not None and first.group(1).lower() in FORMS


def model_info(name: str) -> ModelInfo:
    """The registry entry of `name`; a layer spec given as the name gets the `spec` model's."""
    _ensure_builtins()
    if looks_like_spec(name):
        return _MODELS["spec"]
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"model.name: unknown model {name!r}.{hint} Known: {', '.join(sorted(_MODELS))} (see `cnnkit models`), or a layer spec such as 'conv(32,3)-bn-relu-gap-fc(10)'."
        )
    return _MODELS[name]


def accepts(name: str, arg: str) -> bool:
    """Whether the builder of model `name` takes the keyword `arg` (e.g. ``image_size``)."""
    params = inspect.signature(model_info(name).builder).parameters
    return arg in params


def create_model(name: str, num_classes: int = 10, in_chans: int = 1, **kwargs: Any) -> nn.Module:
    """Build a registered model, or a model from a layer spec given as the name.

    The result remembers how it was built (`model.cnnkit_spec`, what a checkpoint stores);
    `pretrained=` is passed to the builder but not recorded there: the weights it loads end
    up in the checkpoint's state dict, so rebuilding never needs the network.
    """
    _ensure_builtins()
    if looks_like_spec(name):
        if "spec" in kwargs:
            raise ConfigError(
                f"model.name is a layer spec ({name!r}) and model.kwargs.spec is set too: give one of them"
            )
        kwargs = {"spec": name, **kwargs}
        name = "spec"
    info = model_info(name)
    params = inspect.signature(info.builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            valid = [k for k in params if k not in ("num_classes", "in_chans")]
            close = difflib.get_close_matches(unknown[0], valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"model.kwargs: {name} takes no argument {unknown[0]!r}.{hint} Valid: {', '.join(valid) or 'none'}."
            )
    model = info.builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    recorded = {k: v for k, v in kwargs.items() if k not in WEIGHT_ARGS}
    if name == "spec" and hasattr(model, "spec_string"):
        recorded["spec"] = model.spec_string  # the canonical one-line form (a YAML list becomes a string)
    spec = {"name": name, "kwargs": {"num_classes": num_classes, "in_chans": in_chans, **recorded}}
    model.cnnkit_spec = spec  # type: ignore[assignment]  # torch types module attributes as Tensor | Module
    return model
