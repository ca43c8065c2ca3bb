"""The interface every cnnkit model shares.

`forward(x) == forward_head(forward_features(x))`; `reset_classifier(n)` swaps the head
for `n` classes; `target_layer` names the module explanations (Grad-CAM) look at.
"""

from __future__ import annotations

import torch
from torch import nn


class ClassifierBase(nn.Module):
    target_layer: str = ""  # dotted module name of the last convolutional stage

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
