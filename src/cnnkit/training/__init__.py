"""Training: the loop functions, optimisers and schedules, `train(config) -> Run` and its parts
(`setup_run`, `TrainState`, `Hooks`, `resolve_config`; docs/architecture.md)."""

from cnnkit._lazy import lazy_attributes

_NAMES = {
    "evaluate": "cnnkit.training.loop",
    "predict_logits": "cnnkit.training.loop",
    "train_one_epoch": "cnnkit.training.loop",
    "Run": "cnnkit.training.trainer",
    "train": "cnnkit.training.trainer",
    "Hooks": "cnnkit.training.hooks",
    "RunParts": "cnnkit.training.setup",
    "setup_run": "cnnkit.training.setup",
    "TrainState": "cnnkit.training.state",
    "resolve_config": "cnnkit.training.resolve",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
