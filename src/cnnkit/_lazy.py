"""Lazy package attributes, so that importing a package (e.g. for the CLI's parser) does not
import torch until a name that needs it is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` serving `names` ({attribute: module}) on first use."""

    def __getattr__(name: str) -> object:
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
            setattr(importlib.import_module(package), name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
