"""A checkpoint's description checked before anything is built from it.

A tampered or foreign checkpoint must be a clear error naming the file and the key, never an
allocation of terabytes (num_classes 1e12) or a resize to a million pixels. `validate` checks
the types and sane bounds of what a model is rebuilt from (model name and constructor
arguments, class names, input channels / size / normalisation) and that the arguments are ones
the registered builder takes; `check_shapes` then builds the model on the meta device (no
memory) and compares every tensor's shape with the weights in the file.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import torch

from cnnkit.data.images import INTERPOLATIONS
from cnnkit.errors import CheckpointError, CnnkitError

MAX_CLASSES = 100_000  # ImageNet-21k has 21,843
MAX_CHANNELS = 64
MAX_SIDE = 4096  # input pixels per side
MAX_INT_ARG = 1_000_000  # any other integer constructor argument (widths, depths...)


def _fail(path: Path, key: str, problem: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: {key} {problem}; the file is not a usable cnnkit checkpoint (tampered, or from another tool)"
    )


def _int_in(path: Path, key: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, key, f"must be an integer, got {type(value).__name__} {str(value)[:40]}")
    if not low <= value <= high:
        raise _fail(path, key, f"is {value:g}, outside the sane range {low}..{high:,}")
    return value


def _floats(path: Path, key: str, values, n: int, positive: bool = False) -> None:
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise _fail(path, key, f"must be a list of {n} numbers (one per channel), got {str(values)[:60]}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
            raise _fail(path, key, f"holds {v!r}, not a finite{' positive' if positive else ''} number")


def validate(ckpt: dict, path: str | Path) -> None:
    """Raise CheckpointError naming `path` and the key when the checkpoint's description is not sane."""
    path = Path(path)
    model = ckpt["model"]
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("name"), str)
        or not isinstance(model.get("kwargs"), dict)
    ):
        raise _fail(path, "model", "must hold a name (text) and kwargs (a mapping)")
    name, kwargs = model["name"], model["kwargs"]
    names = ckpt["class_names"]
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise _fail(path, "class_names", "must be a list of names")
    num_classes = _int_in(path, "model.kwargs.num_classes", kwargs.get("num_classes"), 1, MAX_CLASSES)
    if num_classes != len(names):
        raise _fail(path, "model.kwargs.num_classes", f"is {num_classes} but class_names lists {len(names)} classes")
    in_chans = _int_in(path, "model.kwargs.in_chans", kwargs.get("in_chans"), 1, MAX_CHANNELS)
    inp = ckpt["input"]
    if not isinstance(inp, dict):
        raise _fail(path, "input", "must be a mapping (channels, size, mean, std)")
    channels = _int_in(path, "input.channels", inp.get("channels"), 1, MAX_CHANNELS)
    if channels != in_chans:
        raise _fail(path, "input.channels", f"is {channels} but model.kwargs.in_chans is {in_chans}")
    size = inp.get("size")
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise _fail(path, "input.size", f"must be [height, width], got {str(size)[:60]}")
    for side in size:
        _int_in(path, "input.size", side, 1, MAX_SIDE)
    _floats(path, "input.mean", inp.get("mean"), channels)
    _floats(path, "input.std", inp.get("std"), channels, positive=True)
    interpolation = inp.get("interpolation", "bilinear")  # older checkpoints: bilinear, the only resize then
    if interpolation not in INTERPOLATIONS:
        raise _fail(
            path, "input.interpolation", f"is {str(interpolation)[:40]!r}; expected one of {', '.join(INTERPOLATIONS)}"
        )
    for key, value in kwargs.items():
        if not isinstance(key, str):
            raise _fail(path, "model.kwargs", f"has a non-text key {key!r}")
        if key == "image_size" and value is not None:
            _int_in(path, "model.kwargs.image_size", value, 1, MAX_SIDE)
        elif isinstance(value, int) and not isinstance(value, bool):
            _int_in(path, f"model.kwargs.{key}", value, -MAX_INT_ARG, MAX_INT_ARG)
        elif isinstance(value, float) and not math.isfinite(value):
            raise _fail(path, f"model.kwargs.{key}", f"is {value}, not a finite number")
    _check_signature(path, name, kwargs)


def _check_signature(path: Path, name: str, kwargs: dict) -> None:
    from cnnkit.models._registry import model_info

    try:
        info = model_info(name)
    except CnnkitError:
        raise _fail(
            path, "model.name", f"{name[:80]!r} is not a model this cnnkit knows (see `cnnkit models`)"
        ) from None
    params = inspect.signature(info.builder).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise _fail(path, f"model.kwargs.{unknown[0]}", f"is not an argument of {name} (it takes {', '.join(params)})")


def check_shapes(ckpt: dict, path: str | Path) -> None:
    """Build the model on the meta device (allocating nothing) and compare its tensors' shapes with the
    file's weights; a mismatch is a CheckpointError naming the first differing tensor. A model that
    cannot be built on the meta device is left to the real build."""
    from cnnkit.models import create_model

    spec = ckpt["model"]
    try:
        with torch.device("meta"):
            meta = create_model(spec["name"], **spec["kwargs"])
            if "pruning" in ckpt:  # a structurally pruned model: its recorded widths (cnnkit.models.structure)
                from cnnkit.models.structure import apply_pruning

                apply_pruning(meta, ckpt, path)
    except CheckpointError:
        raise
    except Exception:  # noqa: BLE001 - an op without a meta kernel: the real build reports any problem
        return
    weights = ckpt["state_dict"]
    if not isinstance(weights, dict):
        raise _fail(Path(path), "state_dict", "must be a mapping of names to tensors")
    for key, t in meta.state_dict().items():
        w = weights.get(key)
        if isinstance(w, torch.Tensor) and tuple(w.shape) != tuple(t.shape):
            raise _fail(
                Path(path),
                "model.kwargs",
                f"describe a model whose {key} is {tuple(t.shape)}, but the file's weights are {tuple(w.shape)}",
            )
