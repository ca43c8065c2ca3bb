"""Predictions from a trained model: `cnnkit.load(path) -> Classifier` (classifier.py) and the
`cnnkit predict` verb (commands.py).

The names load on first use, so `cnnkit --help` (which imports inference.commands) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit._lazy import lazy_attributes

__all__ = [
    "LOADER_MODULES",
    "Classifier",
    "Prediction",
    "PredictionReport",
    "expand_paths",
    "load",
    "register_loader",
]
__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, "cnnkit.inference.classifier"))

if TYPE_CHECKING:  # pragma: no cover
    from cnnkit.inference.classifier import (
        LOADER_MODULES,
        Classifier,
        Prediction,
        PredictionReport,
        expand_paths,
        load,
        register_loader,
    )
