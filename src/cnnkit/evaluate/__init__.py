"""Evaluation: metrics from logits, plots, and evaluating a checkpoint."""

from cnnkit.evaluate.api import evaluate_checkpoint
from cnnkit.evaluate.metrics import classification_metrics

__all__ = ["classification_metrics", "evaluate_checkpoint"]
