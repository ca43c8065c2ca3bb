"""`cnnkit export`: checkpoint -> model.onnx (+ model.parity.json beside it), parity checked every time."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cnnkit.data.preprocess import Normalize
from cnnkit.deploy.onnx_export import DEFAULT_OPSET, ExportError, export_model
from cnnkit.deploy.parity import DEFAULT_TOLERANCE, Parity, check_parity
from cnnkit.deploy.source import load_split, random_images, resolve
from cnnkit.rundir import atomic_write_text

log = logging.getLogger("cnnkit")


class ParityError(ExportError):
    """The exported file does not compute what the checkpoint computes (numbers in the message)."""


@dataclass
class ExportResult:
    path: Path
    exporter: str
    parity: Parity
    parity_path: Path


def parity_path_for(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.stem + ".parity.json")


def export_checkpoint(
    path: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    images: int = 64,
    tolerance: float = DEFAULT_TOLERANCE,
    check: bool = True,
) -> ExportResult:
    """Export the run / checkpoint at `path`; raise ParityError (after writing the JSON) when the
    ONNX file's top-1 differs on any of `images` test images or a logit differs by more than `tolerance`."""
    from cnnkit.checkpoint import model_from_checkpoint
    from cnnkit.deploy.metadata import describe

    src = resolve(path, allow_onnx=False)
    ckpt = src.checkpoint
    assert ckpt is not None
    meta = describe(ckpt, src.checkpoint_path)
    target = Path(out) if out is not None else src.export_dir / "model.onnx"
    model = model_from_checkpoint(ckpt)
    used = export_model(model, meta, target, opset=opset, exporter=exporter)
    split = load_split(meta, "test", limit=images)
    x, where = (split.images, "test split") if split is not None else (random_images(meta, images), "random inputs")
    parity = check_parity(
        model, target, x, Normalize(meta["input"]["mean"], meta["input"]["std"]), source=where, tolerance=tolerance
    )
    ppath = parity_path_for(target)
    record = {
        "onnx": str(target),
        "checkpoint": str(src.checkpoint_path),
        "model": meta["model"]["name"],
        "exporter": used,
        "opset": opset,
        **parity.to_dict(),
    }
    atomic_write_text(ppath, json.dumps(record, indent=2) + "\n")
    if check and not parity.ok:
        raise ParityError(
            f"{target}: the ONNX model does not match the checkpoint: {parity.text()} (numbers in {ppath})"
        )
    return ExportResult(target, used, parity, ppath)
