"""CPU inference backends: each turns a normalised float batch (N, C, H, W) into logits.

eager          fp32 PyTorch, as trained
channels-last  fp32 PyTorch with NHWC tensors (oneDNN's preferred layout for convolutions)
bf16           channels-last under bf16 autocast; only where the CPU computes bf16 natively
               (AVX512-BF16 / AMX: `cnnkit.training.device.native_bf16`), elsewhere emulated and slower
compile        torch.compile (inductor) of the channels-last model; a compiler failure is reported, not fatal
onnxruntime    the exported fp32 ONNX file in onnxruntime
onnxruntime-int8  the static int8 (QDQ) ONNX file in onnxruntime
torch-int8     PyTorch's own int8 (torch.ao FX static quantization, x86 engine): deploy/torch_int8.py
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.errors import CnnkitError

log = logging.getLogger("cnnkit")

NAMES = ("eager", "channels-last", "bf16", "compile", "onnxruntime", "onnxruntime-int8", "torch-int8")
TORCH = NAMES[:4]
Runner = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Backend:
    name: str
    run: Runner | None  # None: unavailable here, see `reason`
    reason: str = ""


def torch_backend(name: str, model: torch.nn.Module, example: torch.Tensor | None = None) -> Backend:
    """One of the PyTorch backends of `model` (a copy is not made: channels-last converts in place)."""
    from cnnkit.training.device import native_bf16

    model = model.cpu().float().eval()
    if name == "eager":
        return Backend(name, _no_grad(model))
    cl = model.to(memory_format=torch.channels_last)
    if name == "channels-last":
        return Backend(name, _no_grad(cl, channels_last=True))
    if name == "bf16":
        if not native_bf16(torch.device("cpu")):
            return Backend(
                name,
                None,
                "this CPU has no native bf16 (AVX512-BF16/AMX): autocast would be emulated and slower than fp32",
            )
        return Backend(name, _no_grad(cl, channels_last=True, bf16=True))
    if name == "compile":
        try:
            compiled = torch.compile(cl)
            run = _no_grad(compiled, channels_last=True)
            if example is not None:
                run(example)  # compile now, so a failure is reported here and not timed later
            return Backend(name, run)
        except Exception as e:  # noqa: BLE001 - no C++ compiler, an unsupported op... reported in the table
            return Backend(
                name,
                None,
                f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}",
            )
    raise CnnkitError(f"unknown backend {name!r}: choose one of {', '.join(NAMES)}")


def _no_grad(model: Callable[[torch.Tensor], torch.Tensor], channels_last: bool = False, bf16: bool = False) -> Runner:
    def run(x: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            return model(x).float()

    return run


def onnx_backend(name: str, path: Path | None, threads: int | None = None) -> Backend:
    if path is None or not Path(path).is_file():
        return Backend(name, None, "no ONNX file (export / quantize failed, see above)")
    from cnnkit.deploy.runtime import run_logits, session

    sess = session(path, threads)
    return Backend(name, lambda x: run_logits(sess, x, batch_size=len(x) or 1))
