"""`cnnkit quantize`: int8 post-training quantization of an exported model with onnxruntime.

static: activations' ranges calibrated on N training images (MinMax), per-channel int8
weights, QDQ format (what onnxruntime fuses into integer kernels; VNNI/AMX CPUs run them fast).
On a CPU without VNNI, `reduce_range` (7-bit weights) avoids the saturation of the u8 x s8
multiply (the accuracy loss reported for AVX2 hosts); it is switched on there automatically.
dynamic: int8 weights, activations quantized on the fly per batch (no calibration).
The test-split accuracy of the fp32 and the int8 file is measured and written beside the file;
a drop above `max_drop` points is a QuantizationError carrying both numbers.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.data.preprocess import Normalize
from cnnkit.deploy.source import load_split, random_images
from cnnkit.errors import CnnkitError
from cnnkit.rundir import atomic_write_text

log = logging.getLogger("cnnkit")
MODES = ("static", "dynamic")


class QuantizationError(CnnkitError):
    """Quantization lost more accuracy than allowed (both numbers in the message)."""


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return set(
                next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
            )
    except OSError:
        return set()


def has_vnni() -> bool:
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


@dataclass
class QuantResult:
    path: Path
    report_path: Path
    report: dict


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over normalised batches."""

    def __init__(self, images: torch.Tensor, normalize: Normalize, input_name: str, batch_size: int = 16):
        self.batches = [normalize(images[i : i + batch_size]).numpy() for i in range(0, len(images), batch_size)]
        self.name = input_name
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.name: np.ascontiguousarray(self.batches[self.i - 1], dtype=np.float32)}

    def rewind(self) -> None:
        self.i = 0


def quantize_onnx(
    src: Path,
    dst: Path,
    meta: dict,
    *,
    mode: str = "static",
    calib: int = 256,
    reduce_range: bool | None = None,
    seed: int = 0,
) -> dict:
    """Write the int8 model of `src` to `dst` (metadata kept, a `quantization` entry added); returns that entry."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cnnkit.deploy.metadata import load_model_proto, write_metadata

    if mode not in MODES:
        raise CnnkitError(f"--mode {mode!r}: choose static or dynamic")
    rr = (not has_vnni()) if reduce_range is None else reduce_range
    info: dict = {
        "mode": mode,
        "per_channel": True,
        "reduce_range": rr,
        "format": "QDQ" if mode == "static" else "QOperator",
        "source": str(src),
    }
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant.") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:  # shape inference + graph optimisation, as onnxruntime's quantization guide recommends
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as e:  # noqa: BLE001 - the quantizer works on the raw graph too, just less fused
            log.info("quantization pre-processing skipped (%s)", e)
            pre = src
        out = Path(tmp) / "int8.onnx"
        if mode == "static":
            split = load_split(meta, "train", limit=calib, seed=seed)
            images, info["calibration"] = (
                (split.images, "train split")
                if split is not None
                else (random_images(meta, calib, seed), "random inputs")
            )
            info["calibration_images"] = len(images)
            reader = _Reader(images, Normalize(meta["input"]["mean"], meta["input"]["std"]), "input")
            CalibrationDataReader.register(_Reader)
            quantize_static(
                str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=rr,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )  # fmt: skip
        else:
            quantize_dynamic(str(pre), str(out), per_channel=True, reduce_range=rr, weight_type=QuantType.QInt8)
        proto = load_model_proto(out)
        write_metadata(proto, {**meta, "quantization": info})
        data = proto.SerializeToString()
        from cnnkit.deploy.onnx_export import write_bytes

        write_bytes(dst, data)
    return info


def onnx_accuracy(
    path: Path, images: torch.Tensor, labels: torch.Tensor, normalize: Normalize, threads: int | None = None
) -> float:
    from cnnkit.deploy.runtime import run_logits, session

    sess = session(path, threads)
    correct = 0
    for i in range(0, len(images), 256):
        correct += int((run_logits(sess, normalize(images[i : i + 256])).argmax(1) == labels[i : i + 256]).sum())
    return correct / max(len(images), 1)


def quantize(
    path: str | os.PathLike,
    *,
    exporter: str = "auto",
    mode: str = "static",
    calib: int = 256,
    max_drop: float = 1.0,
    out: str | os.PathLike | None = None,
    test_images: int | None = None,
    reduce_range: bool | None = None,
    check: bool = True,
) -> QuantResult:
    """Quantize a run / checkpoint (exported first, into export/model.onnx) or an exported ONNX file."""
    from cnnkit.deploy.export import export_checkpoint
    from cnnkit.deploy.metadata import read_metadata
    from cnnkit.deploy.source import resolve

    if max_drop < 0:
        raise CnnkitError(f"--max-drop must be >= 0 (accuracy points), got {max_drop}")
    src = resolve(path)
    fp32 = src.onnx if src.onnx is not None else export_checkpoint(path, exporter=exporter).path
    meta = read_metadata(fp32)
    if "quantization" in meta:
        raise CnnkitError(f"{fp32}: already quantized ({meta['quantization'].get('mode')}); give the fp32 model.onnx")
    dst = (
        Path(out)
        if out is not None
        else fp32.with_name(f"{fp32.stem}.int8.onnx" if mode == "static" else f"{fp32.stem}.int8-dynamic.onnx")
    )
    info = quantize_onnx(fp32, dst, meta, mode=mode, calib=calib, reduce_range=reduce_range)
    report: dict = {
        "fp32": str(fp32),
        "int8": str(dst),
        **info,
        "max_drop_points": max_drop,
        "size_bytes": {"fp32": fp32.stat().st_size, "int8": dst.stat().st_size},
    }
    split = load_split(meta, "test", limit=test_images) if test_images != 0 else None
    if split is not None and split.labels.ndim == 1:
        norm = Normalize(meta["input"]["mean"], meta["input"]["std"])
        before, after = (
            onnx_accuracy(fp32, split.images, split.labels, norm),
            onnx_accuracy(dst, split.images, split.labels, norm),
        )
        report.update(
            test_images=len(split), accuracy_fp32=before, accuracy_int8=after, drop_points=100 * (before - after)
        )
    else:
        report.update(
            test_images=0,
            accuracy_fp32=None,
            accuracy_int8=None,
            drop_points=None,
            note="no labelled test data reachable: accuracy not measured",
        )
    report_path = dst.with_name(dst.stem + ".json")
    atomic_write_text(report_path, json.dumps(report, indent=2) + "\n")
    if check and report["drop_points"] is not None and report["drop_points"] > max_drop:
        raise QuantizationError(
            f"{dst}: int8 test accuracy {report['accuracy_int8']:.2%} vs fp32 {report['accuracy_fp32']:.2%}: a drop of {report['drop_points']:.2f} points "
            f"exceeds --max-drop {max_drop:g} (numbers in {report_path}); try --mode dynamic, more --calib images, or keep the fp32 model"
        )
    return QuantResult(dst, report_path, report)
