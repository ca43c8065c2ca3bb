"""`train(config) -> Run`: build data and model, fit, evaluate, and write the run folder."""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from cnnkit.checkpoint import atomic_save, make_checkpoint, unwrap
from cnnkit.config import Config, save_config
from cnnkit.data import build_dataset
from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize, num_batches
from cnnkit.data.types import Dataset
from cnnkit.errors import ConfigError
from cnnkit.evaluate.metrics import classification_metrics
from cnnkit.evaluate.plots import plot_confusion_matrix, plot_learning_curves
from cnnkit.models import create_model, model_info
from cnnkit.report import write_report
from cnnkit.rundir import create_run_dir
from cnnkit.training.device import resolve_device, seed_everything
from cnnkit.training.loop import predict_logits, train_one_epoch, evaluate
from cnnkit.training.optim import build_optimizer, build_scheduler
from cnnkit.training.progress import Progress

METRIC_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]


@dataclass
class Run:
    """A finished run: its folder, resolved config, per-epoch metrics and summary."""

    dir: Path
    config: Config
    metrics: list[dict]
    summary: dict

    @property
    def best_checkpoint(self) -> Path:
        return self.dir / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.dir / "last.ckpt"

    def load(self, device: str = "cpu"):
        from cnnkit.inference import load

        return load(self.best_checkpoint, device=device)


def _model_kwargs(cfg: Config, data: Dataset) -> dict:
    kwargs = dict(cfg.model.kwargs)
    for reserved in ("num_classes", "in_chans"):
        if reserved in kwargs:
            raise ConfigError(f"model.kwargs.{reserved} is set from the dataset; remove it")
    params = inspect.signature(model_info(cfg.model.name).builder).parameters
    if "image_size" in params and "image_size" not in kwargs:
        kwargs["image_size"] = data.image_size[0]
    return kwargs


def _resolve(cfg: Config, data: Dataset, run_dir: Path) -> Config:
    """The config with what was chosen automatically written in."""
    resolved_data = cfg.data
    if cfg.data.dataset == "folder":
        resolved_data = dataclasses.replace(cfg.data, channels=data.channels, image_size=data.image_size[0])
    return dataclasses.replace(cfg, data=resolved_data, run=dataclasses.replace(cfg.run, name=run_dir.name))


def _write_metrics(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in METRIC_COLUMNS})


def _environment(device: torch.device) -> dict:
    from cnnkit import __version__

    return {
        "cnnkit": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def train(config: Config | None = None, *, stream: TextIO | None = None, interactive: bool | None = None, quiet: bool = False) -> Run:
    """Train a model as `config` says and write a complete run folder. Returns the Run."""
    cfg = config or Config()
    tc = cfg.train
    if tc.epochs < 1 or tc.batch_size < 1:
        raise ConfigError(f"train.epochs and train.batch_size must be at least 1 (got {tc.epochs}, {tc.batch_size})")
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    data = build_dataset(cfg.data, seed=tc.seed)
    if len(data.train) < tc.batch_size:
        raise ConfigError(f"train.batch_size {tc.batch_size} is larger than the {len(data.train)} training images; use a smaller --batch-size")

    generator = seed_everything(tc.seed)
    model = create_model(cfg.model.name, num_classes=data.num_classes, in_chans=data.channels, **_model_kwargs(cfg, data))
    model.to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim)
    steps_per_epoch = num_batches(len(data.train), tc.batch_size, drop_last=True)
    scheduler = build_scheduler(optimizer, cfg.schedule, tc.epochs * steps_per_epoch)
    normalize = Normalize(data.mean, data.std, device, channels_last=tc.channels_last)
    augment = BatchAugment(translate=cfg.augment.translate, hflip=cfg.augment.hflip)

    run_dir = create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=data.name, model=cfg.model.name)
    cfg = _resolve(cfg, data, run_dir)
    save_config(cfg, run_dir / "config.yaml")
    env = _environment(device)
    (run_dir / "environment.json").write_text(json.dumps(env, indent=2))
    if data.skipped:
        with open(run_dir / "skipped.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "reason"])
            w.writerows((s.path, s.reason) for s in data.skipped)

    def checkpoint(epoch: int, metrics: dict) -> dict:
        return make_checkpoint(
            model, class_names=data.class_names, channels=data.channels, size=data.image_size, mean=data.mean, std=data.std,
            config=cfg.to_dict(), dataset=data.name, epoch=epoch, metrics=metrics,
        )

    prev_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(tc.deterministic, warn_only=True)
    rows: list[dict] = []
    best = {"epoch": 0, "val_accuracy": -1.0, "val_loss": float("inf")}
    t_train = time.perf_counter()
    try:
        with Progress(tc.epochs, steps_per_epoch, stream=stream, interactive=interactive, quiet=quiet) as progress:
            progress.message(
                f"cnnkit: training {cfg.model.name} on {data.name} ({len(data.train)} train / {len(data.val)} val"
                f"{f' / {len(data.test)} test' if data.test is not None else ''} images, {data.num_classes} classes) "
                f"on {device}; run folder {run_dir}"
            )
            for epoch in range(1, tc.epochs + 1):
                progress.start_epoch(epoch)
                t0 = time.perf_counter()
                lr = optimizer.param_groups[0]["lr"]
                tr = train_one_epoch(
                    model, data.train, optimizer=optimizer, scheduler=scheduler, normalize=normalize, batch_size=tc.batch_size,
                    generator=generator, augment=augment, label_smoothing=cfg.optim.label_smoothing, precision=tc.precision,
                    on_step=progress.step,
                )
                va = evaluate(model, data.val, normalize=normalize, batch_size=tc.eval_batch_size, precision=tc.precision)
                row = {
                    "epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "val_loss": va["loss"],
                    "val_accuracy": va["accuracy"], "lr": lr, "seconds": time.perf_counter() - t0,
                }
                rows.append(row)
                _write_metrics(rows, run_dir / "metrics.csv")
                progress.end_epoch(row)
                ckpt = checkpoint(epoch, {k: row[k] for k in METRIC_COLUMNS[1:]})
                atomic_save(ckpt, run_dir / "last.ckpt")
                if (va["accuracy"], -va["loss"]) > (best["val_accuracy"], -best["val_loss"]):
                    best = {"epoch": epoch, "val_accuracy": va["accuracy"], "val_loss": va["loss"]}
                    atomic_save(ckpt, run_dir / "best.ckpt")
            train_seconds = time.perf_counter() - t_train

            # Test metrics come from the best checkpoint, on the test split only.
            best_state = torch.load(run_dir / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
            unwrap(model).load_state_dict(best_state)
            eval_split = data.test if data.test is not None else data.val
            split_name = "test" if data.test is not None else "val"
            logits = predict_logits(model, eval_split, normalize=normalize, batch_size=tc.eval_batch_size, precision=tc.precision)
            final = classification_metrics(logits, eval_split.labels, data.class_names)
    finally:
        torch.use_deterministic_algorithms(prev_deterministic)

    (run_dir / f"{split_name}_metrics.json").write_text(json.dumps(final, indent=2))
    plot_learning_curves(rows, run_dir / "plots" / "learning_curves.png")
    plot_confusion_matrix(final["confusion_matrix"], data.class_names, run_dir / "plots" / "confusion_matrix.png", title=f"Confusion matrix ({split_name}, best epoch {best['epoch']})")
    headline = {k: final[k] for k in ("accuracy", "loss", "top5_accuracy", "num_samples") if k in final}
    summary = {
        "run": run_dir.name,
        "dataset": data.name,
        "model": cfg.model.name,
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "input": {"channels": data.channels, "size": list(data.image_size), "mean": list(data.mean), "std": list(data.std)},
        "split_sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test) if data.test is not None else 0},
        "class_counts": {"train": data.train.class_counts(data.num_classes)},
        "skipped_files": len(data.skipped),
        "epochs": tc.epochs,
        "train_seconds": round(train_seconds, 2),
        "images_per_second": round(tc.epochs * steps_per_epoch * tc.batch_size / train_seconds, 1),
        "best_epoch": best["epoch"],
        "best_val_accuracy": best["val_accuracy"],
        "test": headline if split_name == "test" else None,
        "val": headline if split_name == "val" else None,
        "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "cnnkit_version": env["cnnkit"],
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(run_dir, cfg, summary, rows, final, data.skipped)
    if not quiet:
        acc = headline["accuracy"]
        print(f"{split_name} accuracy {acc:.2%} (best epoch {best['epoch']}), {train_seconds:.1f}s of training. Run folder: {run_dir}", file=stream or sys.stdout, flush=True)
    return Run(run_dir, cfg, rows, summary)
