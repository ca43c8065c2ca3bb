"""A DCGAN run through the engine's pieces (run folder, config.yaml, atomic checkpoints, device and
precision, seeding): the engine's own loop takes one loss and one optimiser, so the GAN keeps its epoch
loop here, and training/gan.py hands it the interrupt handling. Per epoch: a sample grid of one fixed noise
batch (samples/epoch_NNN.png), both losses and D(x) / D(G(z)) in metrics.csv, last.ckpt; at the end
plots/gan_curves.png, summary.json and report.html (tasks/gan/report.py's section). train.time_budget (seconds
of training, 0: off) ends the run early, mid-epoch if need be (that epoch's row is the mean of its steps)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TextIO

import torch

from cnnkit.checkpoint import atomic_save
from cnnkit.config import Config, save_config
from cnnkit.data import build_dataset
from cnnkit.device import autocast, resolve_device, resolve_precision, seed_everything
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.rundir import atomic_write_text, create_run_dir
from cnnkit.tasks.gan.ema import ema_copy, ema_update
from cnnkit.tasks.gan.grid import save_grid
from cnnkit.tasks.gan.model import build_pair
from cnnkit.tasks.gan.progress import write_progress
from cnnkit.tasks.gan.state import GanState
from cnnkit.tasks.gan.step import STEP_KEYS, gan_step, to_tanh_range

COLUMNS = ["epoch", *STEP_KEYS, "seconds"]


class StopFlag(Protocol):
    """What the loop asks between steps (training.interrupt.GracefulInterrupt fits)."""

    @property
    def requested(self) -> bool: ...


@dataclasses.dataclass
class GanRun:
    dir: Path
    config: Config
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]
    generator: torch.nn.Module
    interrupted: bool = False


@dataclasses.dataclass
class _Parts:
    cfg: Config
    dir: Path
    images: torch.Tensor  # (N, C, H, W) uint8, the training split
    labels: torch.Tensor | None  # (N,) its class indices, for a conditional pair
    class_names: list[str]
    device: torch.device
    precision: str
    fixed_noise: torch.Tensor  # (samples, latent): the same batch every epoch's grid shows
    fixed_labels: torch.Tensor | None  # (samples,): 0, 1, ..., K-1, 0, ... for a conditional pair
    batch: int
    state: GanState

    def amp(self) -> AbstractContextManager[Any]:
        ctx: AbstractContextManager[Any] = autocast(self.device, self.precision)
        return ctx

    def budget_spent(self, running: float = 0.0) -> bool:
        """train.time_budget (or train.time_limit: here the same, a stop within train.epochs) is on and the
        training seconds so far (+ `running`, the pass in progress) reach it."""
        budget = self.cfg.train.time_budget or self.cfg.train.time_limit or 0.0
        return bool(budget) and self.state.train_seconds + running >= budget

    def scored_now(self) -> bool:
        """gan.score_with and gan.score_every ask for the quality numbers at the epoch just completed."""
        every = self.cfg.gan.score_every
        return bool(self.cfg.gan.score_with) and bool(every) and self.state.epoch % every == 0

    def sampler(self) -> torch.nn.Module:
        """The network the samples come from: the EMA of G when gan.ema is on, else G."""
        return self.state.g_ema if self.state.g_ema is not None else self.state.g


Check = Callable[[dict[str, Any] | None, Config, Any, Path | None], dict[str, Any]]


def train_gan(
    cfg: Config,
    *,
    stop: StopFlag,
    resume: Path | None = None,
    quiet: bool = False,
    stream: TextIO | None = None,
    check: Check | None = None,
) -> GanRun:
    """Train (or continue, from `resume`'s last.ckpt) a DCGAN as `cfg` says; returns the finished (or
    interrupted: `stop.requested`, last.ckpt written) run. `check(ckpt, cfg, data, run_dir)`: the engine's
    resume check (training/resume_check.check): refuses a resume with changed settings or data, returns the
    data's fingerprint (saved in last.ckpt)."""
    out = None if quiet else (stream or sys.stdout)
    p = setup(cfg, resume, check)
    if out:
        s = p.images.shape
        limit = cfg.train.time_budget or cfg.train.time_limit
        budget = f", time {'budget' if cfg.train.time_budget else 'limit'} {limit:.0f} s" if limit else ""
        print(
            f"DCGAN on {cfg.data.dataset}: {s[0]} images {s[1]}x{s[2]}x{s[3]}, {p.device}, {p.precision}{budget}",
            file=out,
        )
    while p.state.epoch < cfg.train.epochs and not p.budget_spent():
        if train_epoch(p, stop) == "stopped":
            save_last(p)
            return GanRun(p.dir, cfg, p.state.rows, {}, p.state.g, interrupted=True)
        end_epoch(p)
        if out:
            r = p.state.rows[-1]
            print(
                f"epoch {r['epoch']}/{cfg.train.epochs}: loss D {r['loss_d']:.3f} G {r['loss_g']:.3f}, "
                f"D(x) {r['d_real']:.3f} D(G(z)) {r['d_fake']:.3f}, {r['seconds']:.1f} s",
                file=out,
            )
    summary = finish(p)
    if out:
        print(f"Run folder: {p.dir}", file=out)
    return GanRun(p.dir, cfg, p.state.rows, summary, p.state.g)


def setup(cfg: Config, resume: Path | None, check: Check | None = None) -> _Parts:
    """Data, device, both networks with the paper's init and Adam, the run folder; a resumed run's state."""
    device = resolve_device(cfg.runtime.device)
    precision = resolve_precision(cfg.runtime.precision, device)
    data = build_dataset(cfg.data, cfg.train.seed)
    images, k = data.train.images, conditional_classes(cfg, data)
    n, channels, h, w = images.shape
    if h != w:
        raise ConfigError(f"data: a DCGAN here takes square images, got {h}x{w}; use --image-size")
    if cfg.gan.score_with:  # a wrong path fails now, not after the training
        from cnnkit.checkpoint import resolve_checkpoint

        if not resolve_checkpoint(cfg.gan.score_with).is_file():
            raise ConfigError(f"gan.score_with: {cfg.gan.score_with}: no such classifier checkpoint or run folder")
    generator = seed_everything(cfg.train.seed)
    g, d = build_pair(cfg.gan.latent, channels, h, cfg.gan.width, k, cfg.gan.spectral_norm)
    g, d = g.to(device), d.to(device)
    betas = (cfg.gan.beta1, 0.999)
    state = GanState(
        g,
        d,
        torch.optim.Adam(g.parameters(), cfg.gan.lr, betas),
        torch.optim.Adam(d.parameters(), cfg.gan.lr, betas),
        generator,
        g_ema=ema_copy(g) if cfg.gan.ema else None,
    )
    fixed = torch.randn(cfg.gan.samples, cfg.gan.latent, generator=torch.Generator().manual_seed(cfg.train.seed + 1))
    ckpt = load_gan_checkpoint(Path(resume) / "last.ckpt") if resume is not None else None
    state.dataset = check(ckpt, cfg, data, resume) if check else None  # on resume: refuses changed settings / data
    if resume is not None and ckpt is not None:
        run_dir = Path(resume)
        state.load_state_dict(ckpt["train_state"])
    else:
        run_dir = create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=cfg.data.dataset, model="dcgan")
        (run_dir / "samples").mkdir()
        save_config(cfg, run_dir / "config.yaml")
    fixed_labels = (torch.arange(cfg.gan.samples) % k).to(device) if k else None
    return _Parts(
        cfg,
        run_dir,
        images,
        data.train.labels if k else None,
        list(data.class_names),
        device,
        precision,
        fixed.to(device),
        fixed_labels,
        min(cfg.train.batch_size, n),
        state,
    )


def conditional_classes(cfg: Config, data: Any) -> int:
    """The number of classes a conditional pair is given (0: gan.conditional off); refuses data it cannot use."""
    if not cfg.gan.conditional:
        return 0
    if data.train.labels.ndim != 1 or data.num_classes < 2:
        raise ConfigError(
            f"gan.conditional: needs single-label data of 2 or more classes; {cfg.data.dataset} has "
            f"{data.num_classes} class(es){' with multi-label rows' if data.train.labels.ndim != 1 else ''}; "
            "drop --conditional"
        )
    return int(data.num_classes)


def train_epoch(p: _Parts, stop: StopFlag) -> str:
    """The rest of the epoch in progress: "done", "stopped" when `stop` asked to stop (after a whole step), or
    "budget" when train.time_budget ran out (after a whole step)."""
    s = p.state
    n = p.images.shape[0]
    if s.order is None:
        s.order = torch.randperm(n, generator=s.generator)
        s.step, s.sums = 0, dict.fromkeys(STEP_KEYS, 0.0)
    steps = n // p.batch
    t0 = time.perf_counter()
    s.g.train()
    s.d.train()
    while s.step < steps:
        idx = s.order[s.step * p.batch : (s.step + 1) * p.batch]
        real = to_tanh_range(p.images[idx]).to(p.device)
        z = torch.randn(p.batch, p.cfg.gan.latent, generator=s.generator).to(p.device)
        labels = p.labels[idx].to(p.device) if p.labels is not None else None
        logged = gan_step(s.g, s.d, s.opt_g, s.opt_d, real, z, p.amp, labels, p.cfg.gan.loss)
        if s.g_ema is not None:
            ema_update(s.g_ema, s.g, p.cfg.gan.ema)
        for k, v in logged.items():
            s.sums[k] += v
        s.step += 1
        asked = stop.requested
        if (asked or p.budget_spent(time.perf_counter() - t0)) and s.step < steps:
            s.train_seconds += time.perf_counter() - t0
            return "stopped" if asked else "budget"
    s.train_seconds += time.perf_counter() - t0
    return "done"


def end_epoch(p: _Parts) -> None:
    """The epoch's row (means of its steps), its sample grid, metrics.csv and last.ckpt."""
    s = p.state
    steps = max(1, s.step)
    s.epoch += 1
    s.rows.append({"epoch": s.epoch, **{k: v / steps for k, v in s.sums.items()}, "seconds": s.train_seconds})
    s.order, s.step, s.sums = None, 0, {}
    k = int(p.fixed_labels.max()) + 1 if p.fixed_labels is not None else None  # conditional: one class a column
    grid = p.dir / "samples" / f"epoch_{s.epoch:03d}.png"
    save_grid(sample(p.sampler(), p.fixed_noise, p.fixed_labels), grid, nrow=k if k and k > 1 else None)
    write_progress(p.dir / "samples")
    write_metrics(s.rows, p.dir / "metrics.csv")
    save_last(p)
    if p.scored_now():
        from cnnkit.tasks.gan.score import score_into_run

        score_into_run(p.dir, str(p.cfg.gan.score_with), n=p.cfg.gan.score_n, epoch=s.epoch)


@torch.no_grad()
def sample(g: torch.nn.Module, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """G(z[, labels]) in eval mode (batch norm's running statistics), (B, C, H, W) in [-1, 1]; leaves g's mode
    as it was."""
    was = g.training
    g.eval()
    try:
        out: torch.Tensor = g(z, labels)
        return out.float()
    finally:
        g.train(was)


def save_last(p: _Parts, *, finished: bool = False) -> None:
    atomic_save(checkpoint_dict(p, finished), p.dir / "last.ckpt")


def checkpoint_dict(p: _Parts, finished: bool) -> dict[str, Any]:
    from cnnkit import __version__

    g = p.state.g
    return {
        "task": "gan",
        "cnnkit_version": __version__,
        "config": p.cfg.to_dict(),
        "gan": {
            "latent": g.latent,
            "channels": g.channels,
            "side": g.side,
            "width": g.width,
            "num_classes": g.num_classes,
            "class_names": p.class_names if g.num_classes else [],
            "ema": p.state.g_ema is not None,
        },
        "train_state": p.state.state_dict(),
        "finished": finished,
    }


def load_gan_checkpoint(path: Path) -> dict[str, Any]:
    """A GAN run's checkpoint; errors name the file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; give a run folder written by cnnkit train --task gan")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("task") != "gan":
        raise CheckpointError(
            f"{path}: not a GAN checkpoint (task {ckpt.get('task') if isinstance(ckpt, dict) else None!r})"
        )
    return ckpt


def write_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({k: f"{r[k]:.6g}" if isinstance(r[k], float) else r[k] for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


def finish(p: _Parts) -> dict[str, Any]:
    """plots/gan_curves.png, summary.json and last.ckpt marked finished."""
    from cnnkit import __version__
    from cnnkit.tasks.gan.plots import plot_curves

    s = p.state
    plot_curves(s.rows, p.dir / "plots" / "gan_curves.png")
    n, c, h, w = p.images.shape
    summary = {
        "task": "gan",
        "model": "dcgan",
        "dataset": p.cfg.data.dataset,
        "images": n,
        "shape": [c, h, w],
        "epochs": s.epoch,
        "train_seconds": round(s.train_seconds, 3),
        "final": s.rows[-1] if s.rows else {},
        "cnnkit_version": __version__,
    }
    atomic_write_text(p.dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    save_last(p)  # the final weights, for the scoring below
    if p.cfg.gan.score_with and not p.scored_now():  # (scored_now: end_epoch has just scored these weights)
        from cnnkit.tasks.gan.score import score_into_run

        score_into_run(p.dir, p.cfg.gan.score_with, n=p.cfg.gan.score_n, epoch=s.epoch)
    if p.cfg.run.html_report:
        from cnnkit.report.html import write_html_report

        write_html_report(p.dir)
    save_last(p, finished=True)
    return summary
