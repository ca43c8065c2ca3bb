"""FGSM and PGD in pixel space: the attacked function is `model(normalize(x))` with x in [0, 1].

eps is measured on the image as the user sees it (0-1 pixels), whatever the checkpoint's
mean/std, and every adversarial image stays in [0, 1].

The gradient step is Captum's (`captum.robust.FGSM`: sign of the input gradient of the loss,
no move where the gradient is ~0, clamped to 0..1). The PGD loop around it (random start,
projection on the eps-ball, clamp) is the few lines of `captum.robust.PGD.perturb`, written
here for two reasons: Captum draws the random start from the process-wide RNG (we need a
`torch.Generator`, so that attacks are seeded and adversarial training resumes bit-identically
without shifting the training's own random stream), and for the L2 norm Captum takes a sign
step then renormalises, while a proper L2 step (the gradient divided by its L2 norm) is
measurably stronger (see benchmarks/results/bench_robust.md). With `random_start=False` and
the L∞ norm the loop gives exactly Captum's PGD (tests/robust/test_attacks.py checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F

from cnnkit.errors import ConfigError

NORMS = ("linf", "l2")
METHODS = ("fgsm", "pgd")

Forward = Callable[[torch.Tensor], torch.Tensor]


def parse_eps(text: str | float, flag: str = "--eps") -> float:
    """'8/255', '0.1' or a number -> float in [0, 1]; a ConfigError naming `flag` otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip()
        try:
            value = float(Fraction(s)) if "/" in s else float(s)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(
                f"{flag} {text!r}: not a number; give a pixel size in 0..1 such as 8/255 or 0.1"
            ) from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{flag} {text!r}: must be >= 0 (a pixel size in 0..1 such as 8/255 or 0.1)")
    if value > 1:
        raise ConfigError(f"{flag} {text!r}: must be <= 1: eps is in pixel units of the 0-1 image (8/255, not 8)")
    return value


def parse_eps_list(text: str, flag: str = "--robust-eps") -> list[float]:
    """'0,1/255,8/255' -> sorted unique floats (each checked by parse_eps)."""
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    if not parts:
        raise ConfigError(f"{flag} {text!r}: give comma-separated sizes such as 0,2/255,8/255")
    return sorted({parse_eps(p, flag) for p in parts})


def pixel_forward(model: torch.nn.Module, normalize: Callable[[torch.Tensor], torch.Tensor]) -> Forward:
    """x in [0, 1] -> logits. `normalize` is a cnnkit Normalize (it expects 0-255 pixels) or any
    callable on 0-1 pixels; either way the attack sees 0-1 pixels."""
    from cnnkit.data.preprocess import Normalize

    if isinstance(normalize, Normalize):
        return lambda x: model(normalize(x * 255.0)).float()
    return lambda x: model(normalize(x)).float()


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), y, reduction="none")


def default_step_size(eps: float, steps: int, norm: str = "linf") -> float:
    """2.5 * eps / steps (Madry et al. 2018): enough to cross the ball and come back."""
    return 2.5 * eps / max(steps, 1)


def random_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform point of the eps-ball around x (as Captum's PGD draws it), clamped to [0, 1]."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=generator.device if generator else x.device)
        delta = (u.to(x.device) * 2 - 1) * eps
    else:
        g = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device).to(x.device)
        g = F.normalize(g.flatten(1), dim=1).view_as(x)
        d = x[0].numel()
        r = (
            torch.rand(x.shape[0], generator=generator, device=generator.device if generator else x.device).to(x.device)
            ** (1.0 / d)
            * eps
        )
        delta = g * r.view(-1, *([1] * (x.dim() - 1)))
    return (x + delta).clamp(0, 1)


def project(x: torch.Tensor, x_adv: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """x_adv moved back into the eps-ball around x and into [0, 1]."""
    diff = x_adv - x
    if norm == "linf":
        diff = diff.clamp(-eps, eps)
    else:
        diff = torch.renorm(diff, 2, 0, eps)
    return (x + diff).clamp(0, 1).detach()


def fgsm_step(forward: Forward, x: torch.Tensor, y: torch.Tensor, step: float, targeted: bool = False) -> torch.Tensor:
    """One signed-gradient step of size `step` (Captum's FGSM), clamped to [0, 1]."""
    from captum.robust import FGSM

    attack = FGSM(forward, _loss, lower_bound=0.0, upper_bound=1.0)
    # Captum leaves pixels whose |gradient| <= 1e-6 where they are; a confident model's cross-entropy
    # gradient is often smaller than that, yet its sign is right: only an exact 0 means no direction
    attack.zero_thresh = 0.0
    return attack.perturb(x.detach().requires_grad_(True), step, y, targeted=targeted).detach()


def l2_step(forward: Forward, x: torch.Tensor, y: torch.Tensor, step: float, targeted: bool = False) -> torch.Tensor:
    """One step of L2 length `step` along the normalised input gradient (x unchanged where it is 0)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_loss(forward(x), y).sum(), x)
    norm = grad.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
    direction = torch.where(norm > 1e-12, grad / norm.clamp_min(1e-12), torch.zeros_like(grad))
    return (x + (-step if targeted else step) * direction).clamp(0, 1).detach()


def pgd(
    forward: Forward,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "linf",
    targeted: bool = False,
    start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) in pixel space; `start`: from a random point of the ball."""
    alpha = default_step_size(eps, steps, norm) if step_size is None else step_size
    x = x.detach()
    x_adv = random_start(x, eps, norm, generator) if start and eps > 0 else x.clone()
    step = fgsm_step if norm == "linf" else l2_step
    for _ in range(steps):
        x_adv = project(x, step(forward, x_adv, y, alpha, targeted), eps, norm)
    return x_adv


def fgsm(
    forward: Forward, x: torch.Tensor, y: torch.Tensor, eps: float, *, norm: str = "linf", targeted: bool = False
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size eps (L2: along the normalised gradient)."""
    return project(x, (fgsm_step if norm == "linf" else l2_step)(forward, x, y, eps, targeted), eps, norm)


@dataclass(frozen=True)
class AttackSpec:
    """One attack. step_size None: 2.5 * eps / steps. restarts: PGD from that many random starts,
    keeping per image the first that succeeds (else the one with the highest loss)."""

    method: str = "pgd"
    eps: float = 8 / 255
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    restarts: int = 1
    targeted: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.norm not in NORMS:
            raise ConfigError(f"--norm {self.norm!r}: choose one of {', '.join(NORMS)}")
        parse_eps(self.eps)
        if self.steps < 1:
            raise ConfigError(f"--steps {self.steps}: must be >= 1")
        if self.restarts < 1:
            raise ConfigError(f"--restarts {self.restarts}: must be >= 1")
        if self.method == "fgsm" and self.restarts != 1:
            raise ConfigError(f"--restarts {self.restarts}: FGSM has no random start; restarts are for --method pgd")
        if self.step_size is not None and not (0 < self.step_size <= 1):
            raise ConfigError(f"--step-size {self.step_size}: must be in (0, 1] (pixel units)")


@dataclass
class AttackResult:
    x_adv: torch.Tensor  # (B, C, H, W) in [0, 1]
    logits_clean: torch.Tensor
    logits_adv: torch.Tensor
    success: torch.Tensor  # bool (B,): misclassified (untargeted) / predicted as the target (targeted)
    restarts_used: int


def _success(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    pred = logits.argmax(1)
    return pred == y if targeted else pred != y


def run_attack(forward: Forward, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec) -> AttackResult:
    """Attack a [0, 1] batch. `y`: true labels, or the target classes when spec.targeted."""
    x = x.detach().float()
    with torch.no_grad():
        clean = forward(x)
    gen = torch.Generator(device=x.device).manual_seed(spec.seed)
    best = x.clone()
    best_loss = torch.full((len(x),), -math.inf, device=x.device)
    done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    used = 0
    for _ in range(spec.restarts if spec.method == "pgd" else 1):
        todo = ~done
        if not todo.any():
            break
        if spec.method == "fgsm":
            adv = fgsm(forward, x, y, spec.eps, norm=spec.norm, targeted=spec.targeted)
        else:
            adv = pgd(
                forward,
                x[todo],
                y[todo],
                spec.eps,
                steps=spec.steps,
                step_size=spec.step_size,
                norm=spec.norm,
                targeted=spec.targeted,
                generator=gen,
            )
            adv = x.clone().index_put_((todo.nonzero().squeeze(1),), adv) if not todo.all() else adv
        with torch.no_grad():
            logits = forward(adv)
        loss = _loss(logits, y) * (-1 if spec.targeted else 1)
        ok = _success(logits, y, spec.targeted)
        take = todo & (ok | (loss > best_loss))
        best[take] = adv[take]
        best_loss = torch.where(take, loss, best_loss)
        done |= todo & ok
        used += 1
    with torch.no_grad():
        final = forward(best)
    return AttackResult(best, clean, final, _success(final, y, spec.targeted), used)
