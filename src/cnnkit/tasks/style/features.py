"""The feature extractor: a frozen network's outputs at named layers for an image in pixel space.

The image being optimised stays in pixel space, RGB in [0, 1] (clamped after each step by
optimise.py); the extractor applies the network's own normalisation ((x - mean) / std) inside,
so the optimiser never sees normalised values and the result needs no undoing. A 1-channel
network (a cnnkit checkpoint trained on grey images) sees the image's mean over colour.
Layers are module names (`dict(model.named_modules())`); the forward pass stops as soon as the
deepest one asked for has been recorded, so the deeper stages of the network cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from cnnkit.errors import ConfigError


class _Enough(Exception):
    """Raised by the hook of the last layer needed: the rest of the forward pass is skipped."""


class FeatureExtractor(nn.Module):
    """`extractor(image) -> {layer name: (B, C, H, W)}` for `layers` of `model` (its parameters frozen)."""

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        channels: int = 3,
    ):
        super().__init__()
        modules = dict(model.named_modules())
        unknown = [n for n in layers if n not in modules or not n]
        if unknown:
            known = ", ".join(n for n in modules if n)
            raise ConfigError(
                f"--layers: the network has no layer {', '.join(map(repr, unknown))}; its layers are: {known[:2000]}"
            )
        self.model = model.eval().requires_grad_(False)
        for m in self.model.modules():  # an in-place activation would overwrite a recorded output
            if getattr(m, "inplace", False) is True:
                m.inplace = False  # type: ignore[assignment]  # nn.ReLU & co. keep it as a plain attribute
        self.layers = list(dict.fromkeys(layers))
        self.channels = channels
        self.register_buffer("mean_", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std_", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))
        self.mean_: torch.Tensor
        self.std_: torch.Tensor
        self._modules_by_name = {n: modules[n] for n in self.layers}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, 3, H, W) in [0, 1] -> the recorded outputs, one entry per layer."""
        x = image.mean(1, keepdim=True) if self.channels == 1 else image
        x = (x - self.mean_) / self.std_  # the network's own input normalisation
        recorded: dict[str, torch.Tensor] = {}
        wanted = set(self.layers)

        def hook(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
            def record(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
                # a reference, no copy: in-place activations were switched off in __init__
                recorded[name] = output
                if wanted <= recorded.keys():
                    raise _Enough

            return record

        handles = [m.register_forward_hook(hook(n)) for n, m in self._modules_by_name.items()]
        try:
            forward = getattr(self.model, "forward_features", self.model)
            forward(x)
        except _Enough:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.layers if n not in recorded]
        if missing:
            raise ConfigError(
                f"--layers: {', '.join(missing)} produced no output in the network's forward pass; choose feature layers"
            )
        return recorded
