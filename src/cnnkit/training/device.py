"""Moved to cnnkit.device (the package root: inference and models use it too); this name stays for older imports."""

from cnnkit.device import autocast, native_bf16, resolve_device, resolve_precision, seed_everything  # noqa: F401
