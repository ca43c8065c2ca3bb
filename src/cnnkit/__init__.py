"""cnnkit: convolutional neural networks on images, from a folder of pictures to a trained,
evaluated model, with one command each.

    import cnnkit
    run = cnnkit.train(cnnkit.Config())          # mnist-mini, the default small CNN
    clf = cnnkit.load(run.dir)                    # best.ckpt
    clf.predict(cnnkit.samples_dir() / "7.png")  # a sample digit that ships with cnnkit
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "Classifier",
    "Config",
    "Run",
    "__version__",
    "create_model",
    "evaluate_checkpoint",
    "list_models",
    "load",
    "samples_dir",
    "train",
]

_LAZY = {
    "Config": "cnnkit.config",
    "Classifier": "cnnkit.inference",
    "load": "cnnkit.inference",
    "Run": "cnnkit.training.trainer",
    "train": "cnnkit.training.trainer",
    "create_model": "cnnkit.models",
    "list_models": "cnnkit.models",
    "evaluate_checkpoint": "cnnkit.evaluate.api",
    "samples_dir": "cnnkit.data.samples",
}


def __getattr__(name: str):
    # Imports are lazy so that `import cnnkit` (and `cnnkit --help`) stay fast.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API (the lazy names included), for dir(cnnkit) and tab completion."""
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from cnnkit.config import Config
    from cnnkit.data.samples import samples_dir
    from cnnkit.evaluate.api import evaluate_checkpoint
    from cnnkit.inference import Classifier, load
    from cnnkit.models import create_model, list_models
    from cnnkit.training.trainer import Run, train
