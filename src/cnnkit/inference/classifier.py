"""`cnnkit.load(path) -> Classifier`: predictions with the preprocessing the checkpoint stores.

Single-label checkpoints give softmax probabilities and the top-k classes. Multi-label ones
(`checkpoint["task"] == "multi_label"`, trained on rows with several labels) give each label's
sigmoid probability, and every label at or above `threshold` (default 0.5) in `Prediction.labels`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnkit.background import fix_background
from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from cnnkit.data.images import is_image_file, open_image, pil_to_array, read_batches
from cnnkit.data.preprocess import Normalize
from cnnkit.device import resolve_device
from cnnkit.errors import ConfigError

ImageLike = Any  # PIL.Image | str | os.PathLike | np.ndarray | torch.Tensor


@dataclass
class Prediction:
    label: str  # the most probable class
    probability: float
    top_k: list[tuple[str, float]]
    source: str | None = None
    labels: list[tuple[str, float]] | None = (
        None  # multi-label models: every label at or above the threshold, most probable first
    )

    def to_dict(self) -> dict:
        d = {
            "source": self.source,
            "label": self.label,
            "probability": self.probability,
            "top_k": [{"label": name, "probability": p} for name, p in self.top_k],
        }
        if self.labels is not None:
            d["labels"] = [{"label": name, "probability": p} for name, p in self.labels]
        return d


@dataclass
class PredictionReport:
    """Predictions for files, plus the files that could not be read (by name, with the reason)."""

    predictions: list[Prediction] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    light_background: list[str] = field(
        default_factory=list
    )  # light-background files a dark-background model got as they are
    inverted: list[str] = field(default_factory=list)  # files inverted before predicting (invert auto / yes)

    def to_dict(self) -> dict:
        """What `cnnkit predict --format json` prints and `cnnkit serve` answers."""
        return {
            "predictions": [p.to_dict() for p in self.predictions],
            "errors": [{"source": s, "error": e} for s, e in self.errors],
        }


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    """HxW, HxWxC or CxHxW arrays (uint8 0-255, or floats in 0-1) to a PIL image."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # CHW -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(
            f"cannot read an array of shape {np.asarray(arr).shape} as an image; expected HxW, HxWxC or CxHxW with C in 1, 3, 4"
        )
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        return open_image(image)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        return _array_to_pil(image)
    raise TypeError(f"cannot predict on a {type(image).__name__}; give PIL images, paths, NumPy arrays or tensors")


def _as_list(images: ImageLike | Sequence[ImageLike]) -> list[ImageLike]:
    if isinstance(images, (str, os.PathLike, Image.Image)):
        return [images]
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, and the image files inside folders (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and is_image_file(f)
                    and not any(part.startswith(".") for part in f.relative_to(p).parts)
                )
            )
        else:
            out.append(p)
    return out


class Classifier:
    """A trained model with its class names and input preprocessing."""

    def __init__(self, model: torch.nn.Module, checkpoint: dict, device: str | torch.device = "cpu"):
        self.device = resolve_device(str(device))
        self.model = model.to(self.device).eval()
        self.checkpoint = checkpoint
        self.class_names: list[str] = list(checkpoint["class_names"])
        inp = checkpoint["input"]
        self.channels: int = inp["channels"]
        self.size: tuple[int, int] = tuple(inp["size"])  # type: ignore[assignment]
        # the resize's filter of training (data.interpolation); older checkpoints: bilinear
        self.interpolation: str = inp.get("interpolation", "bilinear")
        self.normalize = Normalize(inp["mean"], inp["std"], self.device)
        self.multi_label: bool = checkpoint.get("task") == "multi_label"  # sigmoid per label instead of a softmax
        self.invert: str = "no"  # no | auto (invert light-background images for a dark-background model) | yes (invert all): background.py

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of a uint8 batch: softmax, or each label's sigmoid for multi-label models."""
        logits = self.model(self.normalize(x)).float()
        return (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, 1)).cpu()

    def preprocess(self, images: ImageLike | Sequence[ImageLike]) -> torch.Tensor:
        """uint8 batch (B, C, H, W): channels converted (gray <-> RGB), resized as in training."""
        arrays = [pil_to_array(_to_pil(im), self.channels, self.size, self.interpolation) for im in _as_list(images)]
        return (
            torch.from_numpy(np.stack(arrays))
            if arrays
            else torch.zeros(0, self.channels, *self.size, dtype=torch.uint8)
        )

    @torch.no_grad()
    def predict_proba(self, images: ImageLike | Sequence[ImageLike], batch_size: int = 256) -> torch.Tensor:
        """(N, classes): softmax rows, or independent sigmoids for a multi-label model."""
        x = fix_background(self.preprocess(images), self.invert, self.checkpoint)[0]
        out = [self._probs(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, len(self.class_names))

    def predict(
        self, images: ImageLike | Sequence[ImageLike], top_k: int = 5, threshold: float = 0.5
    ) -> list[Prediction]:
        """Top-k predictions for one image or a sequence of images (paths, PIL, arrays, tensors).
        Multi-label models also list every label with probability >= `threshold` (`Prediction.labels`)."""
        items = _as_list(images)
        probs = self.predict_proba(items)
        return [
            self._prediction(p, top_k, str(src) if isinstance(src, (str, os.PathLike)) else None, threshold)
            for p, src in zip(probs, items)
        ]

    def predict_files(
        self, paths: Iterable[str | os.PathLike], top_k: int = 5, batch_size: int = 256, threshold: float = 0.5
    ) -> PredictionReport:
        """Predict every readable file (folders expanded); unreadable ones are listed, not fatal."""
        report = PredictionReport()
        files = expand_paths(paths)
        for ok, batch in read_batches(files, self.channels, self.size, batch_size, report.errors, self.interpolation):
            x, mismatched, inverted = fix_background(batch, self.invert, self.checkpoint)
            report.light_background += [
                str(f) for f, m, i in zip(ok, mismatched.tolist(), inverted.tolist()) if m and not i
            ]
            report.inverted += [str(f) for f, i in zip(ok, inverted.tolist()) if i]
            with torch.no_grad():
                probs = self._probs(x)
            report.predictions.extend(self._prediction(p, top_k, str(f), threshold) for p, f in zip(probs, ok))
        return report

    def _prediction(self, probs: torch.Tensor, top_k: int, source: str | None, threshold: float = 0.5) -> Prediction:
        if top_k < 1:  # not silently one class: the caller asked for none
            raise ConfigError(f"top_k must be at least 1, got {top_k}")
        k = min(top_k, len(self.class_names))
        values, idx = probs.topk(k)
        top = [(self.class_names[i], float(v)) for v, i in zip(values.tolist(), idx.tolist())]
        labels = None
        if self.multi_label:
            order = torch.argsort(probs, descending=True, stable=True).tolist()
            labels = [(self.class_names[i], float(probs[i])) for i in order if float(probs[i]) >= threshold]
        return Prediction(top[0][0], top[0][1], top, source, labels)


# Loaders of other model files, by suffix: `register_loader(".onnx", loader)` with
# `loader(path, device) -> Classifier`. The areas above this module fill it when imported;
# LOADER_MODULES are those that do, imported by `load` on its first file with a suffix
# (cnnkit.deploy.runtime: `.onnx` files exported by `cnnkit export`).
LOADER_MODULES: list[str] = ["cnnkit.deploy.runtime"]
_LOADERS: dict[str, Callable[[str | os.PathLike, str], Classifier]] = {}


def register_loader(suffix: str, loader: Callable[[str | os.PathLike, str], Classifier]) -> None:
    """Let `load` read files ending in `suffix` (e.g. ".onnx") with `loader(path, device)`."""
    _LOADERS[suffix.lower()] = loader


def _loader_for(path: str | os.PathLike) -> Callable[[str | os.PathLike, str], Classifier] | None:
    suffix = Path(path).suffix.lower()
    if suffix and suffix not in _LOADERS:
        for module in LOADER_MODULES:
            importlib.import_module(module)
    return _LOADERS.get(suffix) if suffix else None


def load(path: str | os.PathLike, device: str = "cpu") -> Classifier:
    """Load a checkpoint (or a run folder: its best.ckpt) as a Classifier; a file another area
    registered a loader for (`.onnx`, exported by `cnnkit export`: an OnnxClassifier, same
    interface, onnxruntime inside) with that loader."""
    loader = _loader_for(path)
    if loader is not None:
        return loader(path, device)
    ckpt = load_checkpoint(resolve_checkpoint(path))
    return Classifier(model_from_checkpoint(ckpt), ckpt, device=device)
