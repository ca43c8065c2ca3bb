"""Self-describing checkpoints, written atomically and read with `weights_only=True`.

A checkpoint is a plain dict of tensors and primitives:
    format, cnnkit_version, model {name, kwargs}, state_dict, class_names,
    input {channels, size, mean, std, resize, interpolation}, config, dataset, epoch, metrics;
    optionally ema_state_dict (the weights' moving average) and, in a run's last.ckpt,
    train_state (optimiser, scheduler, RNG states, data position... see training/trainer.py).
Anything that evaluates, predicts, explains, exports or serves rebuilds the model from it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.checkpoint_check import check_shapes, validate
from cnnkit.errors import CheckpointError, CnnkitError
from cnnkit.rundir import atomic_write
from cnnkit.safe_pickle import refusal

FORMAT = "cnnkit.checkpoint/1"


class CheckpointWriteError(CheckpointError):
    """A checkpoint or run file could not be written (disk full, read-only folder); the previous file is intact."""


REQUIRED = ("format", "model", "state_dict", "class_names", "input")


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under torch.compile / DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    If anything fails (a full disk, say), the previous file at `path` is untouched and the
    temporary file is removed.
    """
    atomic_write(path, lambda f: torch.save(obj, f))


def make_checkpoint(
    model: nn.Module,
    *,
    class_names: list[str],
    channels: int,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    config: dict[str, Any],
    dataset: str,
    epoch: int,
    metrics: dict[str, float],
    interpolation: str | None = None,
) -> dict[str, Any]:
    from cnnkit import __version__

    bare = unwrap(model)
    spec = getattr(bare, "cnnkit_spec", None)
    if spec is None:
        raise ValueError("model was not built by cnnkit.create_model; it cannot describe itself")
    return {
        "format": FORMAT,
        "cnnkit_version": __version__,
        "model": {"name": spec["name"], "kwargs": dict(spec["kwargs"])},
        "state_dict": {k: v.detach().cpu().clone() for k, v in bare.state_dict().items()},
        "class_names": list(class_names),
        "input": {
            "channels": int(channels),
            "size": [int(s) for s in size],
            "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
            "resize": "shorter_side_center_crop",
            "interpolation": interpolation or "bilinear",  # the resize's filter (data.interpolation)
        },
        "config": config,
        "dataset": dataset,
        "epoch": int(epoch),
        "metrics": {k: float(v) for k, v in metrics.items()},
        **({"pruning": dict(pr)} if (pr := getattr(bare, "cnnkit_pruning", None)) else {}),  # models/structure.py
    }


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint safely (`weights_only=True`) and check what it describes before anything is
    built from it (checkpoint_check.py); errors name the file and the key."""
    path = Path(path)
    if path.is_dir():
        path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, unsafe pickle, not a torch file...
        refused = refusal(e)
        if refused is not None:
            raise CheckpointError(f"{path}: {refused}. A cnnkit checkpoint holds only tensors and plain values") from e
        detail = str(e).strip().splitlines()  # an empty file's EOFError has no message at all
        why = f"{type(e).__name__}: {detail[0][:200]}" if detail else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable cnnkit checkpoint ({why}); it may be truncated or corrupt"
        ) from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
        raise CheckpointError(f"{path}: not a cnnkit checkpoint (missing {', '.join(missing)})")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format']!r} is not supported by this cnnkit ({FORMAT})"
        )
    validate(ckpt, path)
    check_shapes(ckpt, path)
    return ckpt


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A run folder means its best.ckpt (else last.ckpt); a file is itself."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.ckpt", "last.ckpt"):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: no best.ckpt or last.ckpt in this folder; is it a cnnkit run folder?")
    return path


def model_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    from cnnkit.models import create_model

    try:
        model = create_model(ckpt["model"]["name"], **ckpt["model"]["kwargs"])
    except CnnkitError:
        raise
    except Exception as e:  # arguments validate() lets through but the builder refuses (a negative width...)
        raise CheckpointError(
            f"checkpoint model {ckpt['model']['name']} cannot be built from its model.kwargs ({type(e).__name__}: {str(e)[:200]})"
        ) from e
    if "pruning" in ckpt:  # a structurally pruned model: its recorded widths (cnnkit.models.structure)
        from cnnkit.models.structure import apply_pruning

        apply_pruning(model, ckpt)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint weights do not fit model {ckpt['model']['name']}: {e}") from e
    return model.eval()
