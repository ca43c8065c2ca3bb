"""Evaluation: metrics from logits, plots, evaluating a checkpoint, comparing runs, report.html.

The public names load on first use, so importing one light submodule (compare, plots)
does not pull in the data pipeline and torchmetrics.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "classification_metrics": "cnnkit.evaluate.metrics",
    "hardest_examples": "cnnkit.evaluate.metrics",
    "evaluate_checkpoint": "cnnkit.evaluate.api",
    "predict_split": "cnnkit.evaluate.api",
    "compare_runs": "cnnkit.evaluate.compare",
    "write_html_report": "cnnkit.evaluate.report_html",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'cnnkit.evaluate' has no attribute {name!r}")
