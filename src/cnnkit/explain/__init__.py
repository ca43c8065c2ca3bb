"""Explanations: what the network looks at and what it learned.

Public names load on first use, so `cnnkit --help` (which imports explain.commands) stays fast.
"""

from __future__ import annotations

from cnnkit._lazy import lazy_attributes

_PUBLIC = {
    "METHODS": "cnnkit.explain.api",
    "attribute": "cnnkit.explain.attribution",
    "explain_files": "cnnkit.explain.api",
    "explain_batch": "cnnkit.explain.api",
    "feature_maps": "cnnkit.explain.featuremaps",
    "maximize_activation": "cnnkit.explain.filters",
    "kernel_images": "cnnkit.explain.filters",
    "ConvDemo": "cnnkit.explain.conv_demo",
}

__all__ = sorted(_PUBLIC)
__getattr__ = lazy_attributes(__name__, _PUBLIC)
