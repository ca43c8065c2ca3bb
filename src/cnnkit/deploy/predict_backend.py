"""`cnnkit predict --backend NAME`: a Classifier whose forward pass is one of the backends
(see backends.py). ONNX backends of a checkpoint are exported (and for int8, statically
quantized on training images) into a temporary folder first; an `.onnx` file runs in onnxruntime."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from cnnkit.deploy.backends import NAMES, TORCH, torch_backend
from cnnkit.errors import CnnkitError
from cnnkit.inference import Classifier


class BackendClassifier(Classifier):
    def __init__(self, model: torch.nn.Module, checkpoint: dict, backend: str):
        super().__init__(model, checkpoint, device="cpu")
        b = torch_backend(backend, self.model)
        if b.run is None:
            raise CnnkitError(f"--backend {backend}: {b.reason}")
        self.backend = backend
        self._run = b.run

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        logits = self._run(self.normalize(x)).float()
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, 1)


def load_backend(path: str | os.PathLike, backend: str, device: str = "cpu") -> Classifier:
    from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from cnnkit.deploy.runtime import OnnxClassifier
    from cnnkit.inference import load

    if backend not in NAMES:
        raise CnnkitError(f"--backend {backend!r}: choose one of {', '.join(NAMES)}")
    is_onnx = Path(path).suffix.lower() == ".onnx"
    if is_onnx:
        if backend not in ("onnxruntime", "onnxruntime-int8"):
            raise CnnkitError(f"{path}: an ONNX file runs with --backend onnxruntime (int8 files too), not {backend}")
        return OnnxClassifier(path)
    if backend == "eager":
        return load(path, device=device)
    if backend == "torch-int8":
        raise CnnkitError("--backend torch-int8 is measured by cnnkit bench-infer only; predict with onnxruntime-int8")
    if device != "cpu":
        raise CnnkitError(f"--backend {backend} runs on the CPU; drop --device {device}")
    if backend in TORCH:
        ckpt = load_checkpoint(resolve_checkpoint(path))
        return BackendClassifier(model_from_checkpoint(ckpt), ckpt, backend)
    from cnnkit.deploy.export import export_checkpoint
    from cnnkit.deploy.quantize import quantize

    with tempfile.TemporaryDirectory(prefix="cnnkit-predict-") as tmp:
        onnx = export_checkpoint(path, out=Path(tmp) / "model.onnx").path
        if backend == "onnxruntime-int8":
            onnx = quantize(onnx, mode="static", calib=64, check=False, test_images=0).path
        return OnnxClassifier(onnx)  # the session holds the graph in memory: the folder can go
