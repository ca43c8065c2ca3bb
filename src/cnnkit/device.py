"""Device, precision and seeding: parameters, never hard-coded."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from cnnkit.errors import ConfigError

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"runtime.device: {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"runtime.device: {name!r} asked for, but CUDA is not available here; use --device cpu or auto"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"runtime.device: {name!r} asked for, but MPS is not available here; use --device cpu or auto"
        )
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 in hardware (CUDA Ampere+, CPUs with AVX512-BF16 / AMX or
    Arm BF16); elsewhere bf16 autocast is emulated and slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(flags))


def resolve_precision(precision: str, device: torch.device) -> str:
    """runtime.precision with "auto" made concrete: bf16 where `device` has it natively, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(device: torch.device, precision: str):
    """An autocast context for `precision` (fp32: none)."""
    dtype = _DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    if dtype is torch.float16 and device.type != "cuda":
        raise ConfigError("runtime.precision: fp16 needs a CUDA device; use bf16 on the CPU")
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator for data order and augmentation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
