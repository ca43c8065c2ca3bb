"""Optional `torch.compile` with a clean fallback to eager execution when compilation fails."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class CompiledWithFallback(nn.Module):
    """Runs the compiled model; on its first failure prints why and runs the eager `module` from then on.

    The eager model stays `self.module`, so `checkpoint.unwrap` finds it and the state dict
    keys carry no `_orig_mod.` prefix.
    """

    def __init__(self, module: nn.Module, compiled: Callable, notify: Callable[[str], None]):
        super().__init__()
        self.module = module
        self.__dict__["_compiled"] = compiled  # not a registered submodule: no duplicate parameters
        self._notify = notify

    @property
    def compiled(self) -> bool:
        return self.__dict__["_compiled"] is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compiled = self.__dict__["_compiled"]
        if compiled is not None:
            try:
                return compiled(x)
            except Exception as e:  # backend missing, unsupported op, compiler error...
                self.__dict__["_compiled"] = None
                first = (str(e).strip().splitlines() or [""])[0][:300]
                self._notify(
                    f"cnnkit: --compile: torch.compile failed ({type(e).__name__}: {first}); continuing without compilation"
                )
        return self.module(x)


def maybe_compile(model: nn.Module, enabled: bool, notify: Callable[[str], None]) -> nn.Module:
    if not enabled:
        return model
    try:
        compiled = torch.compile(model)
    except Exception as e:
        notify(
            f"cnnkit: --compile: torch.compile is not available ({type(e).__name__}: {e}); continuing without compilation"
        )
        return model
    return CompiledWithFallback(model, compiled, notify)
