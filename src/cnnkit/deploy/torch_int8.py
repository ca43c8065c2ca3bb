"""The `torch-int8` backend: PyTorch's own int8 path, torch.ao FX graph-mode static quantization
with the x86 engine's default qconfig (per-channel int8 weights, histogram-calibrated uint8
activations, fused conv-bn-relu running on fbgemm / oneDNN int8 kernels).

The PT2E flow (torch.export + X86InductorQuantizer) moved out of torch into the separate `torchao`
package in this torch (2.14: `torch.ao.quantization.quantize_pt2e` is gone), so cnnkit uses the
FX flow torch still ships. It needs a symbolically traceable model: torchvision-style networks
(resnet18, simple_cnn) trace; models with data-dependent Python control flow (layer specs with
residual blocks, fastnet, efficientnet_lite0) do not, and their row says so.
"""

from __future__ import annotations

import copy
import warnings

import torch

from cnnkit.deploy.backends import Backend

NAME = "torch-int8"


def _engine() -> str | None:
    engines = torch.backends.quantized.supported_engines
    return next((e for e in ("x86", "fbgemm", "onednn") if e in engines), None)


def torch_int8_backend(model: torch.nn.Module, calib: torch.Tensor) -> Backend:
    """`model` (fp32, eval) quantized with calibration on `calib` (normalised images); a Backend
    whose `run` is None, with the reason, when this torch or this model cannot be quantized this way."""
    engine = _engine()
    if engine is None:
        return Backend(NAME, None, "this torch build has no x86 / fbgemm / onednn quantized engine")
    try:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    except ImportError as e:
        return Backend(NAME, None, f"this torch has no torch.ao FX quantization ({e})")
    prev = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = engine
        with warnings.catch_warnings():  # torch 2.14 announces the move to torchao on every call
            warnings.simplefilter("ignore")
            m = copy.deepcopy(model).cpu().float().eval()
            prepared = prepare_fx(m, get_default_qconfig_mapping(engine), (calib[:1],))
            with torch.inference_mode():
                for chunk in calib.split(32):
                    prepared(chunk)
            quantized = convert_fx(prepared)
    except Exception as e:  # noqa: BLE001 - tracing / quantizing fails for many models: a row with its reason
        first = str(e).splitlines()[0][:160] if str(e) else ""
        return Backend(
            NAME, None, f"torch.ao FX quantization cannot handle {type(model).__name__}: {type(e).__name__}: {first}"
        )
    finally:
        torch.backends.quantized.engine = prev

    def run(x: torch.Tensor) -> torch.Tensor:
        before = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine  # the packed weights belong to this engine
        try:
            with torch.inference_mode():
                return quantized(x).float()
        finally:
            torch.backends.quantized.engine = before

    return Backend(NAME, run)


@torch.inference_mode()
def parity(reference, run, x: torch.Tensor, batch: int = 64) -> dict:
    """Top-1 agreement and max / mean |logit difference| of `run` against `reference` on `x`."""
    a = torch.cat([reference(c) for c in x.split(batch)]).float()
    b = torch.cat([run(c) for c in x.split(batch)]).float()
    diff = (a - b).abs()
    return {
        "images": len(x),
        "top1_agreement": float((a.argmax(1) == b.argmax(1)).float().mean()),
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
    }
