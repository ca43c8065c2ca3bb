"""Training: the loop functions, optimisers and schedules, and `train(config) -> Run`."""

from cnnkit.training.loop import evaluate, predict_logits, train_one_epoch
from cnnkit.training.trainer import Run, train

__all__ = ["Run", "evaluate", "predict_logits", "train", "train_one_epoch"]
