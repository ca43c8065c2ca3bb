"""A cnnkit model to ONNX: dynamic batch axis, the checkpoint's metadata inside the file.

Exporters: "dynamo" (torch.export, the one PyTorch recommends) and "torchscript" (the tracing
exporter: 5-10x faster to run, deprecated upstream). "auto" tries dynamo and falls back to
torchscript when dynamo fails on the model; which one produced the file is recorded in its
metadata (`cnnkit.exporter`) and in the parity JSON.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnkit.errors import CnnkitError
from cnnkit.rundir import atomic_write

log = logging.getLogger("cnnkit")

EXPORTERS = ("auto", "dynamo", "torchscript")
DEFAULT_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class ExportError(CnnkitError):
    """The model could not be exported (both exporters failed, or parity failed)."""


def _export(model: torch.nn.Module, example: torch.Tensor, path: Path, opset: int, exporter: str) -> None:
    kwargs: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    if exporter == "dynamo":
        kwargs.update(
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},),
            verbose=False,
            external_data=False,
        )
    else:
        kwargs.update(dynamo=False, dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), **kwargs)


def write_bytes(path: Path, data: bytes) -> None:
    """`data` to `path`, atomically (complete or not there)."""

    def write(f) -> None:
        f.write(data)

    atomic_write(path, write)


def export_model(
    model: torch.nn.Module, meta: dict, out: str | os.PathLike, *, opset: int = DEFAULT_OPSET, exporter: str = "auto"
) -> str:
    """Write `model` (eval mode, CPU, fp32) to `out` with `meta` in its metadata; returns the exporter used.
    The file appears atomically (written beside, then renamed)."""
    import onnx

    from cnnkit.deploy.metadata import write_metadata

    if exporter not in EXPORTERS:
        raise CnnkitError(f"--exporter {exporter!r}: choose one of {', '.join(EXPORTERS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().float().eval()
    c, (h, w) = meta["input"]["channels"], meta["input"]["size"]
    example = torch.randn(2, c, h, w)
    tmp = out.with_name(f".{out.name}.export")
    tried = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    errors = []
    for name in tried:
        try:
            _export(model, example, tmp, opset, name)
            break
        except Exception as e:  # noqa: BLE001 - any exporter failure: try the next one, report all
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
            log.info("the %s exporter failed on %s (%s)", name, meta["model"]["name"], errors[-1])
    else:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{meta['model']['name']} could not be exported to ONNX: " + "; ".join(errors))
    try:
        proto = onnx.load(str(tmp))
        write_metadata(proto, {**meta, "exporter": name, "opset": opset})
        data = proto.SerializeToString()
        write_bytes(out, data)
    finally:
        tmp.unlink(missing_ok=True)
    return name
