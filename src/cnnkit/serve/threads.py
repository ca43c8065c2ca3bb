"""`cnnkit serve` without --threads on the CPU: the model's torch threads follow the cores other
processes leave free, as training's do (cnnkit.training.threads.ThreadGovernor). The governor runs
in the model's own thread (the batcher's executor), where torch's thread count is set: started by
the warm-up's first forward pass, re-measured at most every few seconds before a batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnkit.training.threads import ThreadGovernor


class LoadFollowingForward:
    """`forward` with a ThreadGovernor ticked in front of each call (started on the first)."""

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], governor: Callable[[], Any] = ThreadGovernor):
        self.forward, self._make = forward, governor
        self.governor: Any = None  # the ThreadGovernor, once started

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.governor is None:
            self.governor = self._make()
            self.governor.start()
        else:
            self.governor.tick()
        return self.forward(x)


def follows_load(threads: int | None, device: str, backend: str) -> bool:
    """Whether the served model's threads follow the load: no --threads, on the CPU, a torch backend."""
    return threads is None and device == "cpu" and not backend.startswith("onnxruntime")
