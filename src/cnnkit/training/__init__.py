"""Training: the loop functions, optimisers and schedules, and `train(config) -> Run`."""

from cnnkit._lazy import lazy_attributes

_NAMES = {
    "evaluate": "cnnkit.training.loop",
    "predict_logits": "cnnkit.training.loop",
    "train_one_epoch": "cnnkit.training.loop",
    "Run": "cnnkit.training.trainer",
    "train": "cnnkit.training.trainer",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
