"""What the service needs from a loaded model, in one place: preprocessing, one batched forward,
the prediction records of `cnnkit predict`, Grad-CAM, and the model card.

It wraps the `cnnkit.inference.load` Classifier (run folder, .ckpt, or whatever else `load` reads),
using only its interface: `preprocess`, `predict_proba`, `class_names`, `channels`, `size`."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnkit.inference import Classifier, Prediction, PredictionReport


class ServedModel:
    def __init__(self, clf: Classifier, source: str | os.PathLike | None = None, backend: str = "eager"):
        self.clf = clf
        self.source = Path(source) if source is not None else None
        self.backend = backend
        self._logits = None if backend == "eager" else _torch_runner(clf, backend)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu", backend: str = "eager") -> ServedModel:
        from cnnkit.inference import load

        return cls(load(path, device=device), path, backend)

    @property
    def class_names(self) -> list[str]:
        return list(self.clf.class_names)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """uint8 (C, H, W) at the model's input size (runs in a request's thread, not the model's)."""
        return self.clf.preprocess([image])[0].numpy()

    @torch.no_grad()
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """(B, C, H, W) uint8 -> (B, classes) probabilities (float32), one forward pass."""
        x = torch.from_numpy(batch)
        if self._logits is not None:
            logits = self._logits(self.clf.normalize(x))
            probs = torch.sigmoid(logits) if getattr(self.clf, "multi_label", False) else torch.softmax(logits, 1)
        elif hasattr(self.clf, "_probs"):
            probs = self.clf._probs(x)
        else:
            probs = self.clf.predict_proba(x, batch_size=len(x))
        return np.asarray(probs, dtype=np.float32)

    def predictions(self, probs: np.ndarray, sources: list[str], top_k: int) -> PredictionReport:
        """The records `cnnkit predict --format json` prints, one per image."""
        report = PredictionReport()
        report.predictions = [self._prediction(torch.from_numpy(p), top_k, s) for p, s in zip(probs, sources)]
        return report

    def _prediction(self, probs: torch.Tensor, top_k: int, source: str) -> Prediction:
        if hasattr(self.clf, "_prediction"):
            return self.clf._prediction(probs, top_k, source)
        k = min(top_k, len(self.class_names))
        values, idx = probs.topk(k)
        top = [(self.class_names[i], float(v)) for v, i in zip(values.tolist(), idx.tolist())]
        return Prediction(top[0][0], top[0][1], top, source)

    @property
    def explainable(self) -> bool:
        return isinstance(getattr(self.clf, "model", None), torch.nn.Module)

    def explain_png(
        self, image: np.ndarray, method: str = "gradcam", class_name: str | None = None
    ) -> tuple[bytes, str, float]:
        """Grad-CAM (or another method of cnnkit.explain) overlaid on the input, as PNG bytes in memory;
        with the predicted class and its probability. Call it on the model's thread."""
        from cnnkit.explain.api import class_index, explain_batch
        from cnnkit.explain.attribution import LAYER_METHODS, resolve_layer
        from cnnkit.explain.render import overlay, upscale

        target = class_index(self.class_names, class_name)
        layer = resolve_layer(self.clf.model, None)[0] if method in LAYER_METHODS else None
        x = torch.from_numpy(image[None])
        heat, probs = explain_batch(self.clf, x, method, [target] if target is not None else None, layer)
        pred = int(probs[0].argmax())
        rgb = upscale(overlay(image, heat[0]), min_side=224)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        return buf.getvalue(), self.class_names[pred], float(probs[0, pred])

    def card(self) -> dict[str, Any]:
        """GET /v1/model: name, classes, input, normalisation, the run's metrics, versions."""
        import cnnkit

        ckpt = getattr(self.clf, "checkpoint", {}) or {}
        inp = ckpt.get("input", {})
        run_dir = None
        if self.source is not None:
            run_dir = self.source if self.source.is_dir() else self.source.parent
        summary = _read_summary(run_dir)
        return {
            "name": run_dir.name
            if run_dir is not None and self.source is not None and self.source.is_dir()
            else (self.source.stem if self.source else None),
            "architecture": (ckpt.get("model") or {}).get("name"),
            "task": "multi_label" if getattr(self.clf, "multi_label", False) else "single_label",
            "classes": self.class_names,
            "input": {"channels": self.clf.channels, "size": list(self.clf.size)},
            "normalization": {"mean": list(inp.get("mean", [])), "std": list(inp.get("std", []))},
            "metrics": summary,
            "backend": self.backend,
            "explain": self.explainable,
            "cnnkit_version": cnnkit.__version__,
        }


def _torch_runner(clf: Classifier, backend: str):
    """normalised batch -> logits with one of cnnkit.deploy's PyTorch CPU backends (the model converted in place)."""
    from cnnkit.deploy.backends import torch_backend
    from cnnkit.errors import ConfigError

    model = getattr(clf, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"--backend {backend} needs a PyTorch model (a run folder or checkpoint); use --backend eager"
        )
    b = torch_backend(backend, model)
    if b.run is None:
        raise ConfigError(f"--backend {backend} is not available here: {b.reason}")
    return b.run


def _read_summary(run_dir: Path | None) -> dict[str, Any]:
    """The run's numbers from summary.json (scalars only); {} when there is none."""
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return {}
    try:
        data = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
        if isinstance(data, dict)
        else {}
    )
