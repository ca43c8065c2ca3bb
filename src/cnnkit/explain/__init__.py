"""Explanations: what the network looks at and what it learned.

Public names load on first use, so `cnnkit --help` (which imports explain.commands) stays fast.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "METHODS": "cnnkit.explain.attribution",
    "attribute": "cnnkit.explain.attribution",
    "explain_files": "cnnkit.explain.api",
    "explain_batch": "cnnkit.explain.api",
    "feature_maps": "cnnkit.explain.featuremaps",
    "maximize_activation": "cnnkit.explain.filters",
    "kernel_images": "cnnkit.explain.filters",
    "ConvDemo": "cnnkit.explain.conv_demo",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'cnnkit.explain' has no attribute {name!r}")
