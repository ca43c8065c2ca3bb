"""Evaluation: logits of a split, metrics from logits, plots, evaluating a checkpoint, comparing runs
(the run reports are in cnnkit.report).

The public names load on first use, so importing one light submodule (compare, plots)
does not pull in the data pipeline and torchmetrics.
"""

from __future__ import annotations

from cnnkit._lazy import lazy_attributes

_PUBLIC = {
    "classification_metrics": "cnnkit.evaluate.metrics",
    "hardest_examples": "cnnkit.evaluate.metrics",
    "evaluate_checkpoint": "cnnkit.evaluate.api",
    "predict_split": "cnnkit.evaluate.api",
    "predict_logits": "cnnkit.evaluate.predict",
    "compare_runs": "cnnkit.evaluate.compare",
}

__all__ = sorted(_PUBLIC)
__getattr__ = lazy_attributes(__name__, _PUBLIC)
