"""A DCGAN run through the engine's pieces (run folder, config.yaml, atomic checkpoints, device and
precision, seeding): the engine's own loop takes one loss and one optimiser, so the GAN keeps its epoch
loop here, and training/gan.py hands it the interrupt handling. Per epoch: a sample grid of one fixed noise
batch (samples/epoch_NNN.png), both losses and D(x) / D(G(z)) in metrics.csv, last.ckpt; at the end
plots/gan_curves.png, summary.json and report.html (tasks/gan/report.py's section)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
import time
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
from cnnkit.tasks.gan.grid import save_grid
from cnnkit.tasks.gan.model import build_pair
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
    device: torch.device
    precision: str
    fixed_noise: torch.Tensor  # (samples, latent): the same batch every epoch's grid shows
    batch: int
    state: GanState

    def amp(self) -> AbstractContextManager[Any]:
        ctx: AbstractContextManager[Any] = autocast(self.device, self.precision)
        return ctx


def train_gan(
    cfg: Config, *, stop: StopFlag, resume: Path | None = None, quiet: bool = False, stream: TextIO | None = None
) -> GanRun:
    """Train (or continue, from `resume`'s last.ckpt) a DCGAN as `cfg` says; returns the finished (or
    interrupted: `stop.requested`, last.ckpt written) run."""
    out = None if quiet else (stream or sys.stdout)
    p = setup(cfg, resume)
    if out:
        s = p.images.shape
        print(f"DCGAN on {cfg.data.dataset}: {s[0]} images {s[1]}x{s[2]}x{s[3]}, {p.device}, {p.precision}", file=out)
    while p.state.epoch < cfg.train.epochs:
        if not train_epoch(p, stop):
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


def setup(cfg: Config, resume: Path | None) -> _Parts:
    """Data, device, both networks with the paper's init and Adam, the run folder; a resumed run's state."""
    device = resolve_device(cfg.runtime.device)
    precision = resolve_precision(cfg.runtime.precision, device)
    images = build_dataset(cfg.data, cfg.train.seed).train.images
    n, channels, h, w = images.shape
    if h != w:
        raise ConfigError(f"data: a DCGAN here takes square images, got {h}x{w}; use --image-size")
    generator = seed_everything(cfg.train.seed)
    g, d = build_pair(cfg.gan.latent, channels, h, cfg.gan.width)
    g, d = g.to(device), d.to(device)
    betas = (cfg.gan.beta1, 0.999)
    state = GanState(
        g,
        d,
        torch.optim.Adam(g.parameters(), cfg.gan.lr, betas),
        torch.optim.Adam(d.parameters(), cfg.gan.lr, betas),
        generator,
    )
    fixed = torch.randn(cfg.gan.samples, cfg.gan.latent, generator=torch.Generator().manual_seed(cfg.train.seed + 1))
    if resume is not None:
        run_dir = Path(resume)
        state.load_state_dict(load_gan_checkpoint(run_dir / "last.ckpt")["train_state"])
    else:
        run_dir = create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=cfg.data.dataset, model="dcgan")
        (run_dir / "samples").mkdir()
        save_config(cfg, run_dir / "config.yaml")
    return _Parts(cfg, run_dir, images, device, precision, fixed.to(device), min(cfg.train.batch_size, n), state)


def train_epoch(p: _Parts, stop: StopFlag) -> bool:
    """The rest of the epoch in progress; False when `stop` asked to stop (after a whole step)."""
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
        logged = gan_step(s.g, s.d, s.opt_g, s.opt_d, real, z, p.amp)
        for k, v in logged.items():
            s.sums[k] += v
        s.step += 1
        if stop.requested and s.step < steps:
            s.train_seconds += time.perf_counter() - t0
            return False
    s.train_seconds += time.perf_counter() - t0
    return True


def end_epoch(p: _Parts) -> None:
    """The epoch's row (means of its steps), its sample grid, metrics.csv and last.ckpt."""
    s = p.state
    steps = max(1, s.step)
    s.epoch += 1
    s.rows.append({"epoch": s.epoch, **{k: v / steps for k, v in s.sums.items()}, "seconds": s.train_seconds})
    s.order, s.step, s.sums = None, 0, {}
    save_grid(sample(s.g, p.fixed_noise), p.dir / "samples" / f"epoch_{s.epoch:03d}.png")
    write_metrics(s.rows, p.dir / "metrics.csv")
    save_last(p)


@torch.no_grad()
def sample(g: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) in eval mode (batch norm's running statistics), (B, C, H, W) in [-1, 1]; leaves g's mode as it was."""
    was = g.training
    g.eval()
    try:
        out: torch.Tensor = g(z)
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
        "gan": {"latent": g.latent, "channels": g.channels, "side": g.side, "width": g.width},
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
    if p.cfg.run.html_report:
        from cnnkit.report.html import write_html_report

        write_html_report(p.dir)
    save_last(p, finished=True)
    return summary
