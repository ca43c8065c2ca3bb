"""The model registry: `@register_model` fills it, `create_model` builds from it."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    default_input: tuple[int, int, int]  # (C, H, W) the model is meant for


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str | None = None, *, description: str = "", default_input=(1, 28, 28)):
    """Register a builder `fn(num_classes, in_chans, **kwargs) -> nn.Module` under `name`."""

    def wrap(fn):
        key = name or fn.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        _MODELS[key] = ModelInfo(key, fn, doc, tuple(default_input))
        return fn

    return wrap


def _ensure_builtins() -> None:
    from cnnkit.models import lenet, simple  # noqa: F401  (registration on import)


def list_models() -> list[str]:
    _ensure_builtins()
    return sorted(_MODELS)


def model_info(name: str) -> ModelInfo:
    _ensure_builtins()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"model.name: unknown model {name!r}.{hint} Known: {', '.join(sorted(_MODELS))} (see `cnnkit models`).")
    return _MODELS[name]


def create_model(name: str, num_classes: int = 10, in_chans: int = 1, **kwargs: Any) -> nn.Module:
    """Build a registered model. The result remembers how it was built (`model.cnnkit_spec`)."""
    info = model_info(name)
    params = inspect.signature(info.builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            valid = [k for k in params if k not in ("num_classes", "in_chans")]
            close = difflib.get_close_matches(unknown[0], valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"model.kwargs: {name} takes no argument {unknown[0]!r}.{hint} Valid: {', '.join(valid) or 'none'}.")
    model = info.builder(num_classes=num_classes, in_chans=in_chans, **kwargs)
    model.cnnkit_spec = {"name": name, "kwargs": {"num_classes": num_classes, "in_chans": in_chans, **kwargs}}
    return model
