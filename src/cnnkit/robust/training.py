"""Adversarial training: the examples made once per batch, and the hooks that put them into a run.

`perturb_batch(model, normalize, x01, y, generator, epoch, cfg) -> x01_adv` replaces the first
`fraction` of a [0, 1] pixel batch (after augmentation) by adversarial examples (L∞):

- `fgsm-rs`: FGSM from a uniform random start in the eps-ball, step 1.25 * eps, projected
  ("Fast is better than free", Wong, Rice & Kolter 2020);
- `pgd`: PGD-`steps` from a random start, step 2.5 * eps / steps (Madry et al. 2018).

eps ramps up linearly over `warmup_epochs` (`eps_at`).

`train_hooks(cfg)` turns the config's `adv:` section into the run's hooks (what `cnnkit train
--adv-train` passes to `train`): `AdversarialPerturb` as `perturb_batch` and `RobustAtEnd` as
`on_end`. `AdversarialPerturb`, per step:

- attacks the bare model (`checkpoint.unwrap`: under DistributedDataParallel its `.module`, so
  the attack's backward passes never touch DDP's gradient reducer; under torch.compile the eager
  module, so toggling batch norm does not recompile);
- draws ONE number from the run's generator and seeds a generator of its own with it (plus the
  rank): the run's generator advances the same way on every process whatever the share of the
  batch, each process draws different random starts, and a resumed run (which restores the run's
  generator) replays the same perturbations;
- runs the attack's forward passes under bf16 autocast when the run trains in bf16 (as the step
  that follows does; Wong et al. trained with mixed precision too); fp16 runs attack in fp32 (an
  unscaled input gradient underflows in fp16).

Model mode while the examples are made: the model stays in the mode the engine gave it
(train), as in Wong et al.'s and Madry et al.'s code (both build the attack on the training
graph): the attack then sees the network the optimiser step will see (batch statistics,
dropout). Batch-norm running statistics are NOT updated by the attack's forward passes (they are
frozen for its duration, so they track the batches actually trained on, as in ordinary
training). `mode="eval"` (BN running statistics, no dropout) measured no better on full MNIST
(fastnet_t, one fgsm-rs epoch at eps 0.15, PGD-40 on 300 test images): eps 0.1 / 0.2: train mode
92.3 % / 82.0 %, eval mode 93.7 % / 80.3 %, within noise (benchmarks/results/bench_robust_mode_*.md).

`RobustAtEnd` (rank 0, after every result file is written) attacks best.ckpt with PGD-`robust_steps`
(one random start) at the training eps on `robust_n` images of the test split (seeded subset,
robust/evaluate.py), then adds clean and robust accuracy to summary.json (`robust`,
`adversarial_training`), two rows to report.md's table and rebuilds report.html (its Robustness
section and overview show them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnkit.checkpoint import unwrap
from cnnkit.config import AdvConfig, Config
from cnnkit.device import autocast, resolve_precision
from cnnkit.errors import ConfigError
from cnnkit.robust.attacks import fgsm_step, pixel_forward, project, random_start
from cnnkit.training.hooks import EndHook, Hooks

ADV_METHODS = ("fgsm-rs", "pgd")
_RANK_STRIDE = 1_000_003  # each process's own generator: seed + rank * this


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
            raise ConfigError(f"adv.method (--adv-train) {self.method!r}: choose one of {', '.join(ADV_METHODS)}")
        if not (0 < self.eps <= 1):
            raise ConfigError(
                f"adv.eps (--adv-eps) {self.eps}: must be in (0, 1] (pixel units of the 0-1 image, e.g. 8/255 or 0.3)"
            )
        if self.steps < 1:
            raise ConfigError(f"adv.steps (--adv-steps) {self.steps}: must be >= 1")
        if self.step_size is not None and not (0 < self.step_size <= 1):
            raise ConfigError(f"adv.step_size (--adv-step-size) {self.step_size}: must be in (0, 1] (pixel units)")
        if self.warmup_epochs < 0:
            raise ConfigError(f"adv.warmup_epochs (--adv-warmup) {self.warmup_epochs}: must be >= 0")
        if not (0 < self.fraction <= 1):
            raise ConfigError(
                f"adv.fraction (--adv-fraction) {self.fraction}: must be in (0, 1] (the share of each batch made adversarial)"
            )
        if self.mode not in ("train", "eval"):
            raise ConfigError(f"adv.mode {self.mode!r}: choose train or eval")

    @classmethod
    def from_config(cls, adv: AdvConfig) -> AdvTrainConfig:
        return cls(adv.method, adv.eps, adv.steps, adv.step_size, adv.warmup_epochs, adv.fraction, adv.mode)

    def step(self, eps: float) -> float:
        if self.step_size is not None:
            return self.step_size
        return 1.25 * eps if self.method == "fgsm-rs" else 2.5 * eps / self.steps

    def describe(self) -> dict[str, Any]:
        """summary.json's `adversarial_training`."""
        return {
            "method": self.method,
            "eps": self.eps,
            "steps": 1 if self.method == "fgsm-rs" else self.steps,
            "step_size": self.step(self.eps),
            "warmup_epochs": self.warmup_epochs,
            "fraction": self.fraction,
            "mode": self.mode,
        }

    def text(self) -> str:
        """E.g. 'PGD-7 at eps 0.1 (25.5/255), step 0.0357, eps warm-up over 2 epochs, 50 % of each batch'."""
        attack = "FGSM from a random start" if self.method == "fgsm-rs" else f"PGD-{self.steps}"
        parts = [f"{attack} at eps {self.eps:.4g} ({self.eps * 255:.3g}/255), step {self.step(self.eps):.4g}"]
        if self.warmup_epochs:
            parts.append(f"eps warm-up over {self.warmup_epochs:g} epochs")
        if self.fraction < 1:
            parts.append(f"{100 * self.fraction:.0f} % of each batch")
        return ", ".join(parts)


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
    precision: str = "fp32",
) -> torch.Tensor:
    """The batch with its first round(fraction * B) images replaced by adversarial ones (same
    shape, [0, 1], detached). `normalize`: a cnnkit Normalize (0-255 input) or a callable on 0-1 pixels.
    `epoch` 0-based (eps_at); `precision` bf16: the attack's forward passes under bf16 autocast."""
    eps = eps_at(epoch, cfg)
    k = round(cfg.fraction * len(x01))
    if eps <= 0 or k == 0:
        return x01.detach()
    forward = pixel_forward(model, normalize)
    x, yk = x01[:k].detach().float(), y[:k]
    alpha = cfg.step(eps)
    amp = autocast(x.device, "bf16") if precision == "bf16" else contextlib.nullcontext()
    with _attack_mode(model, cfg.mode), torch.enable_grad(), amp:
        adv = random_start(x, eps, "linf", generator)
        for _ in range(1 if cfg.method == "fgsm-rs" else cfg.steps):
            adv = project(x, fgsm_step(forward, adv, yk, alpha), eps, "linf")
    out = x01.detach().clone()
    out[:k] = adv.to(out.dtype)
    return out


def _rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


@dataclass(frozen=True)
class AdversarialPerturb:
    """A run's `Hooks.perturb_batch` (training/hooks.py's signature; `epoch` 1-based). A plain
    object, so the multi-process launcher can send it to its workers."""

    cfg: AdvTrainConfig
    precision: str = "fp32"  # the run's runtime.precision (auto: resolved on the batch's device)

    def __call__(
        self,
        model: torch.nn.Module,
        normalize: Callable[[torch.Tensor], torch.Tensor],
        x01: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        epoch: int,
    ) -> torch.Tensor:
        if y.dim() != 1:
            raise ConfigError(
                "adv.method (--adv-train): adversarial training needs one label per image; this dataset is multi-label"
            )
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))  # one draw per step, whatever the batch
        own = torch.Generator(device=x01.device).manual_seed(seed + _RANK_STRIDE * _rank())
        precision = resolve_precision(self.precision, x01.device)
        return perturb_batch(unwrap(model), normalize, x01, y, own, epoch - 1, self.cfg, precision)


@dataclass(frozen=True)
class RobustAtEnd:
    """A run's `Hooks.on_end`: robust accuracy of best.ckpt at the training eps into summary.json and the reports
    (see the module docstring); then `then` (the caller's own on_end), if any."""

    cfg: AdvTrainConfig
    n: int = 500
    steps: int = 10
    quiet: bool = False
    then: EndHook | None = None

    def __call__(self, run: Any) -> None:
        if self.n > 0:
            add_robust_results(
                run.dir,
                self.cfg,
                n=self.n,
                steps=self.steps,
                summary=run.summary,
                html_report=run.config.run.html_report,
                quiet=self.quiet,
            )
        if self.then is not None:
            self.then(run)


def train_hooks(cfg: Config, hooks: Hooks | None = None, *, quiet: bool = False) -> Hooks:
    """`hooks` (default: none) with adversarial training added when `cfg.adv.method` is not none:
    `train(cfg, hooks=train_hooks(cfg, Hooks(on_end=mine)))` (an `on_end=` keyword of train would replace
    the robust check's). Raises ConfigError (naming the key and its flag) for a bad adv section."""
    hooks = hooks or Hooks()
    if cfg.adv.method == "none":
        return hooks
    from cnnkit.training.recipes import apply_recipe

    adv = AdvTrainConfig.from_config(cfg.adv)
    precision = apply_recipe(cfg).runtime.precision  # what the run trains in (a recipe may set auto)
    return dataclasses.replace(
        hooks,
        perturb_batch=AdversarialPerturb(adv, precision),
        on_end=RobustAtEnd(adv, cfg.adv.robust_n, cfg.adv.robust_steps, quiet, hooks.on_end),
    )


def robust_summary(result: dict, eps: float) -> dict:
    """summary.json's `robust` from a robust_evaluate result that attacked at `eps`."""
    row = min(result["rows"], key=lambda r: abs(r["eps"] - eps))
    return {
        "attack": f"PGD-{result['steps']}",
        "norm": "linf",
        "eps": row["eps"],
        "restarts": result["restarts"],
        "n": result["n"],
        "split": result["split"],
        "clean_accuracy": result["clean_accuracy"],
        "robust_accuracy": row["pgd"],
        "fgsm_accuracy": row["fgsm"],
        "gradients_masked": result["gradients_masked"],
        "warnings": result["warnings"],
    }


def robust_rows(robust: dict, split: str) -> list[str]:
    """report.md's table rows for summary.json's `robust` and `adversarial_training`."""
    eps = robust["eps"]
    return [
        f"| {split} accuracy under {robust['attack']} (L∞, eps {eps:.4g} = {eps * 255:.3g}/255) | "
        f"**{100 * robust['robust_accuracy']:.2f} %** ({robust['n']} images, seeded subset; clean on them: "
        f"{100 * robust['clean_accuracy']:.2f} %) |"
    ]


def add_robust_results(
    run_dir: str | Path,
    cfg: AdvTrainConfig,
    *,
    n: int,
    steps: int,
    summary: dict | None = None,
    html_report: bool = True,
    quiet: bool = False,
) -> dict:
    """Attack best.ckpt at cfg.eps (robust/ files), add the numbers to summary.json, report.md and report.html.
    Returns summary.json's `robust`. `summary`: the run's dict, updated in place as well."""
    from cnnkit.robust.evaluate import robust_evaluate
    from cnnkit.rundir import atomic_write_text

    run_dir = Path(run_dir)
    info = json.loads((run_dir / "summary.json").read_text())
    split = "test" if info.get("test") else "val"
    result = robust_evaluate(
        run_dir, n=n, eps=[0.0, cfg.eps], steps=steps, restarts=1, seed=0, split=split, device=info.get("device", "cpu")
    )
    robust = robust_summary(result, cfg.eps)
    extra = {"adversarial_training": cfg.describe(), "robust": robust}
    info.update(extra)
    if summary is not None:
        summary.update(extra)
    atomic_write_text(run_dir / "summary.json", json.dumps(info, indent=2))
    _add_report_md_rows(run_dir / "report.md", split, robust, cfg)
    if html_report:
        try:
            from cnnkit.report.html import write_html_report

            write_html_report(run_dir)
        except Exception as e:  # the run is complete: a report failure must not lose it (as training/results.py)
            print(
                f"cnnkit: warning: report.html could not be rebuilt ({type(e).__name__}: {e}); rebuild it with: cnnkit report {run_dir}",
                file=sys.stderr,
            )
    if not quiet:
        print(
            f"cnnkit: {split} accuracy under {robust['attack']} at eps {cfg.eps:.4g} ({robust['n']} images): "
            f"{robust['robust_accuracy']:.2%} (clean {robust['clean_accuracy']:.2%} on the same images)",
            flush=True,
        )
        for w in robust["warnings"]:
            print(f"cnnkit: warning: {w}", file=sys.stderr, flush=True)
    return robust


def _add_report_md_rows(path: Path, split: str, robust: dict, cfg: AdvTrainConfig) -> None:
    """Two rows into report.md's table, after the accuracy row: the training's attack and the robust accuracy."""
    from cnnkit.rundir import atomic_write_text

    try:
        lines = path.read_text().splitlines()
    except OSError:
        return  # no report.md to add to
    new = [f"| adversarial training | {cfg.text()} |", *robust_rows(robust, split)]
    at = next((i for i, line in enumerate(lines) if line.startswith(f"| {split} accuracy |")), None)
    if at is None:
        lines += ["", "## Robustness", "", "| | |", "|---|---|", *new]
    else:
        lines[at + 1 : at + 1] = new
    atomic_write_text(path, "\n".join(lines) + "\n")
