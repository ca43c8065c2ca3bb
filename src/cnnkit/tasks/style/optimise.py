"""The optimisation: the image's pixels are the parameters, the network is frozen.

The image lives in pixel space, RGB in [0, 1], and is clamped back into it after every step (the
extractor normalises it for the network). One step is one evaluation of the losses and their gradient
for both optimisers, so their step counts cost the same: L-BFGS runs one iteration per step with its
curvature history kept across steps (lr 1, no line search, as in PyTorch's style-transfer tutorial);
Adam uses lr 0.02 (about 5/255 per step at first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from .features import FeatureExtractor
from .losses import content_loss, gram_matrix, style_loss, total_variation

OPTIMIZERS = ("lbfgs", "adam")
ADAM_LR = 0.02


@dataclass(frozen=True)
class LossWeights:
    content: float = 1.0
    style: float = 1e4
    tv: float = 1.0


@dataclass(frozen=True)
class Losses:
    """Unweighted losses of one image and the weighted total that is minimised."""

    content: float
    style: float
    tv: float
    total: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class Objective:
    """total = w_c * content + w_s * style + w_tv * tv, against fixed targets from the two images."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        content_layer: str,
        style_layers: list[str],
        content: torch.Tensor,
        style: torch.Tensor,
        weights: LossWeights,
    ):
        self.extractor, self.weights = extractor, weights
        self.content_layer, self.style_layers = content_layer, list(style_layers)
        with torch.no_grad():
            self.content_target = extractor(content)[content_layer]  # (1, C, h, w)
            feats = extractor(style)
            self.style_grams = [gram_matrix(feats[n]) for n in self.style_layers]  # each (1, C, C)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, Losses]:
        feats = self.extractor(image)
        c = content_loss(feats[self.content_layer], self.content_target)
        s = style_loss([feats[n] for n in self.style_layers], self.style_grams)
        tv = total_variation(image)
        w = self.weights
        total = w.content * c + w.style * s + w.tv * tv
        return total, Losses(c.item(), s.item(), tv.item(), total.item())


StepHook = Callable[[int, Losses, torch.Tensor], None]  # (step 1..steps, losses before the step, image after it)


def optimise(
    image: torch.Tensor, objective: Objective, steps: int, optimizer: str = "lbfgs", on_step: StepHook | None = None
) -> tuple[torch.Tensor, Losses, Losses]:
    """Minimise `objective` over the pixels of `image` (1, 3, H, W) for `steps` steps.

    Returns the final image and the losses of the initial and of the final image."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    x = image.detach().clone(memory_format=torch.contiguous_format).clamp_(0, 1).requires_grad_(True)
    opt: torch.optim.Optimizer
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=50)
    else:
        opt = torch.optim.Adam([x], lr=ADAM_LR)
    seen: list[Losses] = []  # the losses of each evaluation in the current step

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        total, losses = objective(x)
        total.backward()  # type: ignore[no-untyped-call]
        seen.append(losses)
        return total

    first: Losses | None = None
    for step in range(1, steps + 1):
        seen.clear()
        opt.step(closure)  # type: ignore[no-untyped-call]
        with torch.no_grad():
            x.clamp_(0, 1)  # back into pixel space
        first = first or seen[0]
        if on_step is not None:
            on_step(step, seen[0], x.detach())
    with torch.no_grad():
        _, last = objective(x)
    return x.detach(), first or last, last
