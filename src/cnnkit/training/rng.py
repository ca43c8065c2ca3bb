"""Random-number-generator states as tensors and plain values, so checkpoints load with `weights_only=True`."""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state(generator: torch.Generator | None = None) -> dict:
    """Python, NumPy, torch (CPU and CUDA) and the data generator's states."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()  # legacy=True (the default): a tuple, never the dict form
    assert isinstance(np_state, tuple)
    name, keys, pos, has_gauss, cached = np_state
    return {
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "generator": generator.get_state() if generator is not None else None,
    }


def set_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Restore what `rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
