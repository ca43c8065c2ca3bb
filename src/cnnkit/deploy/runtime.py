"""ONNX models that predict like checkpoints: `OnnxClassifier` has `Classifier`'s interface
(preprocess, predict, predict_proba, predict_files -> the same Prediction objects) with the
same preprocessing (resize/crop to the stored size, channel conversion, mean/std from the
file's metadata), running onnxruntime on the CPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cnnkit.data.preprocess import Normalize
from cnnkit.inference import Classifier, register_loader


def session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session (all graph optimisations; `threads` intra-op threads, default torch's)."""
    from cnnkit.deploy.metadata import OnnxFileError, require

    ort = require("onnxruntime")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for bad graphs
        raise OnnxFileError(
            f"{path}: onnxruntime cannot run this file ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from e


def run_logits(sess, x: torch.Tensor | np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Logits (N, classes) float32 of a normalised float batch, through `sess` in chunks."""
    a = x.numpy() if isinstance(x, torch.Tensor) else x
    a = np.ascontiguousarray(a, dtype=np.float32)
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: a[i : i + batch_size]})[0] for i in range(0, len(a), batch_size)]
    return torch.from_numpy(np.concatenate(outs)).float() if outs else torch.zeros(0, 0)


class OnnxClassifier(Classifier):
    """`cnnkit.load("model.onnx")`: a Classifier whose forward pass is onnxruntime."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        from cnnkit.deploy.metadata import load_model_proto, metadata_of

        self.path = Path(path)
        self.metadata = metadata_of(load_model_proto(self.path), self.path)
        self.session = session(self.path, threads)
        self.device = torch.device("cpu")
        self.model = None  # type: ignore[assignment]
        self.checkpoint = {
            k: self.metadata.get(k) for k in ("class_names", "input", "task", "model", "config", "dataset")
        }
        self.class_names = list(self.metadata["class_names"])
        inp = self.metadata["input"]
        self.channels = inp["channels"]
        self.size = tuple(inp["size"])  # type: ignore[assignment]
        self.interpolation = inp.get("interpolation", "bilinear")  # as Classifier: the resize of training
        self.normalize = Normalize(inp["mean"], inp["std"], self.device)
        self.multi_label = self.metadata.get("task") == "multi_label"
        self.invert = "no"  # as Classifier: background.py's light-background check reads checkpoint["input"]

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        logits = run_logits(self.session, self.normalize(x))
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, 1)


def load_onnx(path: str | os.PathLike, device: str = "cpu") -> OnnxClassifier:
    """`cnnkit.load`'s loader of .onnx files (onnxruntime on the CPU, whatever `device` says)."""
    return OnnxClassifier(path)


register_loader(".onnx", load_onnx)
