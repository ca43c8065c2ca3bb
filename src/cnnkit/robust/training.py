"""Adversarial training, the pure pieces the training engine calls once per batch.

`perturb_batch(model, normalize, x01, y, generator, epoch, cfg) -> x01_adv` replaces the first
`fraction` of a [0, 1] pixel batch (after augmentation) by adversarial examples:

- `fgsm-rs`: FGSM from a uniform random start in the eps-ball, step 1.25 * eps, projected
  ("Fast is better than free", Wong, Rice & Kolter 2020);
- `pgd`: PGD-`steps` from a random start, step 2.5 * eps / steps (Madry et al. 2018).

eps ramps up linearly over `warmup_epochs` (`eps_at`). Every random number comes from
`generator`, so a resumed run that restores the generator makes the same examples.

Model mode while the examples are made: the model stays in the mode the engine gave it
(train), as in Wong et al.'s and Madry et al.'s code: the attack then sees the network the
optimiser step will see (batch statistics, dropout). Batch-norm running statistics are NOT
updated by the attack's forward passes (they are frozen for its duration, so they track the
batches actually trained on, as in ordinary training). `mode="eval"` (BN running statistics,
no dropout) measured no better on full MNIST (fastnet_t, one fgsm-rs epoch at eps 0.15, PGD-40 on
300 test images): eps 0.1 / 0.2: train mode 92.3 % / 82.0 %, eval mode 93.7 % / 80.3 %, within
noise (benchmarks/results/bench_robust_mode_*.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from cnnkit.errors import ConfigError
from cnnkit.robust.attacks import fgsm_step, pixel_forward, project, random_start

ADV_METHODS = ("fgsm-rs", "pgd")


@dataclass(frozen=True)
class AdvTrainConfig:
    """method fgsm-rs | pgd; eps in 0-1 pixel units; step_size None: 1.25 * eps (fgsm-rs),
    2.5 * eps / steps (pgd); warmup_epochs: eps grows linearly over these epochs; fraction:
    share of each batch made adversarial (the rest stays clean); mode: model mode while attacking."""

    method: str = "fgsm-rs"
    eps: float = 0.1
    steps: int = 7
    step_size: float | None = None
    warmup_epochs: float = 0
    fraction: float = 1.0
    mode: str = "train"

    def __post_init__(self) -> None:
        if self.method not in ADV_METHODS:
            raise ConfigError(f"--adv-train {self.method!r}: choose one of {', '.join(ADV_METHODS)}")
        if not (0 <= self.eps <= 1):
            raise ConfigError(
                f"--adv-eps {self.eps}: must be in 0..1 (pixel units of the 0-1 image, e.g. 8/255 or 0.3)"
            )
        if self.steps < 1:
            raise ConfigError(f"--adv-steps {self.steps}: must be >= 1")
        if self.step_size is not None and not (0 < self.step_size <= 1):
            raise ConfigError(f"--adv-step-size {self.step_size}: must be in (0, 1] (pixel units)")
        if self.warmup_epochs < 0:
            raise ConfigError(f"adv.warmup_epochs {self.warmup_epochs}: must be >= 0")
        if not (0 <= self.fraction <= 1):
            raise ConfigError(
                f"adv.fraction {self.fraction}: must be in 0..1 (the share of each batch made adversarial)"
            )
        if self.mode not in ("train", "eval"):
            raise ConfigError(f"adv.mode {self.mode!r}: choose train or eval")

    def step(self, eps: float) -> float:
        if self.step_size is not None:
            return self.step_size
        return 1.25 * eps if self.method == "fgsm-rs" else 2.5 * eps / self.steps


def eps_at(epoch: float, cfg: AdvTrainConfig) -> float:
    """eps for `epoch` (0-based, fractions allowed for a per-batch ramp): eps * (epoch + 1) / warmup_epochs
    during the warm-up, then eps."""
    if cfg.warmup_epochs <= 0:
        return cfg.eps
    return cfg.eps * min(1.0, (epoch + 1) / cfg.warmup_epochs)


@contextlib.contextmanager
def _attack_mode(model: torch.nn.Module, mode: str) -> Iterator[None]:
    """mode "train": BN uses the batch's statistics but does not update its running ones; "eval": eval mode. Restored after."""
    was_training = model.training
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if mode == "eval":
        model.eval()
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True
        model.train(was_training)


def perturb_batch(
    model: torch.nn.Module,
    normalize: Callable[[torch.Tensor], torch.Tensor],
    x01: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    epoch: float,
    cfg: AdvTrainConfig,
) -> torch.Tensor:
    """The batch with its first round(fraction * B) images replaced by adversarial ones (same
    shape, [0, 1], detached). `normalize`: a cnnkit Normalize (0-255 input) or a callable on 0-1 pixels."""
    eps = eps_at(epoch, cfg)
    k = round(cfg.fraction * len(x01))
    if eps <= 0 or k == 0:
        return x01.detach()
    forward = pixel_forward(model, normalize)
    x, yk = x01[:k].detach().float(), y[:k]
    alpha = cfg.step(eps)
    with _attack_mode(model, cfg.mode), torch.enable_grad():
        adv = random_start(x, eps, "linf", generator)
        for _ in range(1 if cfg.method == "fgsm-rs" else cfg.steps):
            adv = project(x, fgsm_step(forward, adv, yk, alpha), eps, "linf")
    out = x01.detach().clone()
    out[:k] = adv.to(out.dtype)
    return out
