"""The checkpoint's description stored in an ONNX file's `metadata_props`, so that the file alone
is enough to predict: class names, input channels / size / mean / std, task, model spec, the
training config (to find the test data again) and the cnnkit version. Values are JSON text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cnnkit.data.images import INTERPOLATIONS
from cnnkit.errors import CnnkitError

FORMAT = "cnnkit.onnx/1"
PREFIX = "cnnkit."
KEYS = (
    "format",
    "cnnkit_version",
    "class_names",
    "input",
    "task",
    "model",
    "config",
    "dataset",
    "checkpoint",
    "exporter",
    "opset",
    "quantization",
    "pruning",
)


class OnnxFileError(CnnkitError):
    """An ONNX file that cannot be used (missing, corrupt, or not written by cnnkit export)."""


def describe(ckpt: dict, checkpoint_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The metadata of a checkpoint (see KEYS)."""
    from cnnkit import __version__

    meta: dict[str, Any] = {
        "format": FORMAT,
        "cnnkit_version": __version__,
        "class_names": list(ckpt["class_names"]),
        "input": dict(ckpt["input"]),
        "task": ckpt.get("task", "single_label"),
        "model": ckpt["model"],
        "config": ckpt.get("config"),
        "dataset": ckpt.get("dataset"),
    }
    if checkpoint_path is not None:
        meta["checkpoint"] = str(Path(checkpoint_path).resolve())
    if "pruning" in ckpt:
        meta["pruning"] = {k: v for k, v in ckpt["pruning"].items() if k != "structure"}
    return meta


def write_metadata(model_proto, meta: dict[str, Any]) -> None:
    """Replace the cnnkit entries of `model_proto.metadata_props` with `meta` (JSON values)."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if not p.key.startswith(PREFIX)]
    del model_proto.metadata_props[:]
    for k, v in keep:
        model_proto.metadata_props.add(key=k, value=v)
    for k, v in meta.items():
        model_proto.metadata_props.add(key=PREFIX + k, value=json.dumps(v))


def load_model_proto(path: str | os.PathLike):
    onnx = require("onnx")

    p = Path(path)
    if not p.is_file():
        raise OnnxFileError(f"{p}: ONNX file not found")
    try:
        return onnx.load(str(p))
    except Exception as e:  # noqa: BLE001 - protobuf decode errors of a truncated or foreign file
        raise OnnxFileError(
            f"{p}: not a readable ONNX file ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'decode error'}); it may be truncated or corrupt"
        ) from e


def metadata_of(model_proto, path: str | os.PathLike) -> dict[str, Any]:
    """The cnnkit metadata of a loaded model, checked; OnnxFileError naming `path` when absent or bad."""
    raw = {p.key[len(PREFIX) :]: p.value for p in model_proto.metadata_props if p.key.startswith(PREFIX)}
    if raw.get("format") is None:
        raise OnnxFileError(
            f"{path}: an ONNX file without cnnkit metadata (class names, input size, mean/std); export the model with `cnnkit export` to use it here"
        )
    try:
        meta = {k: json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError as e:
        raise OnnxFileError(
            f"{path}: cnnkit metadata is not valid JSON ({e}); re-export the model with `cnnkit export`"
        ) from e
    if meta["format"] != FORMAT:
        raise OnnxFileError(f"{path}: cnnkit ONNX format {meta['format']!r} is not supported by this cnnkit ({FORMAT})")
    _check(meta, path)
    return meta


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    return metadata_of(load_model_proto(path), path)


def _check(meta: dict, path) -> None:
    def bad(key: str, what: str) -> OnnxFileError:
        return OnnxFileError(f"{path}: cnnkit metadata {key} {what}; re-export the model with `cnnkit export`")

    names = meta.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise bad("class_names", "must be a non-empty list of names")
    inp = meta.get("input")
    if not isinstance(inp, dict):
        raise bad("input", "must be a mapping (channels, size, mean, std)")
    c = inp.get("channels")
    if not isinstance(c, int) or not 1 <= c <= 64:
        raise bad("input.channels", f"is {c!r}, not an integer 1..64")
    size = inp.get("size")
    if not isinstance(size, list) or len(size) != 2 or not all(isinstance(s, int) and 1 <= s <= 4096 for s in size):
        raise bad("input.size", f"is {size!r}, not [height, width]")
    for key in ("mean", "std"):
        v = inp.get(key)
        if not isinstance(v, list) or len(v) != c or not all(isinstance(x, (int, float)) for x in v):
            raise bad(f"input.{key}", f"must be {c} numbers")
    if any(s <= 0 for s in inp["std"]):
        raise bad("input.std", "must be positive")
    interpolation = inp.get("interpolation", "bilinear")  # files exported before it was recorded: bilinear
    if interpolation not in INTERPOLATIONS:
        raise bad("input.interpolation", f"is {str(interpolation)[:40]!r}; expected one of {', '.join(INTERPOLATIONS)}")


def require(module: str):
    """Import an optional deploy dependency, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise CnnkitError(
            f"{module} is not installed: cnnkit's deployment verbs need `pip install 'cnnkit[deploy]'` ({e})"
        ) from e
