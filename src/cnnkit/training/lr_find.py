"""The learning-rate range test (Smith 2017; fastai's lr_find): grow the rate exponentially
over a short run, record the smoothed loss, suggest the rate where it falls fastest."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.device import autocast


@dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # smoothed (bias-corrected exponential moving average)
    suggestion: float
    diverged: bool  # stopped early because the loss exploded

    def to_dict(self) -> dict:
        return {"lrs": self.lrs, "losses": self.losses, "suggestion": self.suggestion, "diverged": self.diverged}


def suggest_lr(lrs: list[float], losses: list[float], skip_start: float = 0.1) -> float:
    """The rate where the smoothed loss falls fastest (steepest negative slope in log-lr), before its minimum.

    The first `skip_start` fraction of the points is ignored (the average is still settling there).
    """
    if len(lrs) < 3:
        return lrs[0] if lrs else float("nan")
    stop = min(range(len(losses)), key=losses.__getitem__) + 1  # up to the minimum
    first = min(int(len(lrs) * skip_start), max(stop - 3, 0))
    stop = max(stop, first + 3)
    log_lrs = [math.log10(lr) for lr in lrs]
    slopes = {
        i: (losses[i + 1] - losses[i - 1]) / (log_lrs[i + 1] - log_lrs[i - 1]) for i in range(first + 1, stop - 1)
    }
    return lrs[min(slopes, key=slopes.__getitem__)]


def lr_range_test(
    model: nn.Module,
    data: Split,
    optimizer: torch.optim.Optimizer,
    *,
    normalize: Normalize,
    batch_size: int,
    generator: torch.Generator,
    augment: BatchAugment | None = None,
    label_smoothing: float = 0.0,
    loss_fn=None,
    precision: str = "fp32",
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 100,
    smoothing: float = 0.05,
    diverge: float = 4.0,
) -> LRFinderResult:
    """Train for up to `steps` steps with the rate rising geometrically from start_lr to end_lr.

    `loss_fn(logits, labels)` replaces cross-entropy (the run's class weights, say).
    Stops once the smoothed loss exceeds `diverge` x its minimum. The model and optimiser are
    changed: use copies you can throw away.
    """
    model.train()
    device = normalize.device
    factor = (end_lr / start_lr) ** (1 / max(steps - 1, 1))
    lrs, losses = [], []
    avg, best, diverged = 0.0, float("inf"), False
    top = max(g["lr"] for g in optimizer.param_groups) or 1.0
    scales = [g["lr"] / top for g in optimizer.param_groups]  # per-group rates keep their ratios
    order = torch.randperm(len(data), generator=generator)
    pos = 0
    for i in range(steps):
        lr = start_lr * factor**i
        for g, scale in zip(optimizer.param_groups, scales):
            g["lr"] = lr * scale
        if pos + batch_size > len(data):
            order, pos = torch.randperm(len(data), generator=generator), 0
        idx = order[pos : pos + batch_size]
        pos += batch_size
        x = data.images[idx]
        if augment is not None and augment.active:
            x = augment(x, generator)
        x, y = normalize(x), data.labels[idx].to(device)
        with autocast(device, precision):
            logits = model(x).float()
            loss = (
                loss_fn(logits, y)
                if loss_fn is not None
                else F.cross_entropy(logits, y, label_smoothing=label_smoothing)
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            diverged = True
            break
        avg = smoothing * value + (1 - smoothing) * avg
        smoothed = avg / (1 - (1 - smoothing) ** (i + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if i > 5 and smoothed > diverge * best:
            diverged = True
            break
    return LRFinderResult(lrs, losses, suggest_lr(lrs, losses), diverged)


def plot_lr_find(result: LRFinderResult, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses)
    ax.set_xscale("log")
    ax.axvline(result.suggestion, color="tab:red", linestyle="--", label=f"suggested lr {result.suggestion:.3g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.set_title("Learning-rate range test")
    ax.legend()
    fig.tight_layout()
    from cnnkit.io_safety import save_figure, writing

    with writing(path, hint="or choose another --out"):
        save_figure(fig, path, dpi=100)  # atomically: a signal or a full disk leaves the previous plot
    return path


def lr_find(
    cfg, *, out: str | Path = "lr_find.png", steps: int = 100, start_lr: float = 1e-6, end_lr: float = 10.0
) -> LRFinderResult:
    """Build the run `cfg` describes exactly as `train` does (training/setup.py: pretrained weights,
    fine-tuning groups, the whole augmentation, the configured loss), without a run folder; run the
    range test; write the plot to `out`. The thread count is restored afterwards."""
    from cnnkit.training.recipes import apply_recipe
    from cnnkit.training.setup import check_config, setup_run

    cfg = apply_recipe(cfg)
    check_config(cfg, 1)
    prev_threads = torch.get_num_threads()
    if cfg.runtime.num_threads:
        torch.set_num_threads(cfg.runtime.num_threads)
    try:
        parts, _ = setup_run(cfg, quiet=True, folder=False)
        tc = parts.cfg.train
        result = lr_range_test(
            parts.train_model,
            parts.data.train,
            parts.state.optimizer,
            normalize=parts.normalize,
            batch_size=tc.batch_size,
            generator=parts.state.generator,
            augment=parts.augment,
            label_smoothing=parts.cfg.optim.label_smoothing,
            loss_fn=parts.loss_fn,
            precision=parts.cfg.runtime.precision,
            start_lr=start_lr,
            end_lr=end_lr,
            steps=steps,
        )
    finally:
        torch.set_num_threads(prev_threads)
    plot_lr_find(result, out)
    return result
