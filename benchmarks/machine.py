"""What machine a benchmark ran on: lscpu's model name and the SIMD flags that change every
timing (AVX2, AVX-512, VNNI, BF16, AMX), the core count and the load average."""

from __future__ import annotations

import os
import platform
import subprocess

SIMD = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")


def machine_info() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except (OSError, subprocess.SubprocessError):
        pass
    simd = [f for f in SIMD if f in flags]
    return {
        "model": model,
        "cores": os.cpu_count(),
        "simd": " ".join(simd) or "none of " + ", ".join(SIMD),
        "flags": sorted(flags),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
