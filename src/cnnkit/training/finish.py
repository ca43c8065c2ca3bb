"""Finishing a run: `Run` (what `train` returns), summary.json's fields and `finish_run`, which
writes the result files (training/results.py) and calls the on_end hook."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from cnnkit.config import Config
from cnnkit.evaluate.caveats import result_text
from cnnkit.tasks import task_of
from cnnkit.training.hooks import Hooks
from cnnkit.training.results import class_balance, headline, write_results
from cnnkit.training.setup import RunParts


@dataclass
class Run:
    """A finished run: its folder, resolved config, per-epoch metrics and summary."""

    dir: Path
    config: Config
    metrics: list[dict]
    summary: dict
    model: torch.nn.Module | None = dataclasses.field(
        default=None, repr=False
    )  # rank 0: best weights; other ranks: last

    @property
    def best_checkpoint(self) -> Path:
        return self.dir / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.dir / "last.ckpt"

    def load(self, device: str = "cpu"):
        from cnnkit.inference import load

        return load(self.best_checkpoint, device=device)


def _images_trained(ts, steps_run: int, batch_size: int) -> int:
    """Training images the run saw: counted per epoch (a short last batch counts its own size);
    a run resumed from a checkpoint written before the count existed falls back to steps × batch."""
    return ts.images_seen or (steps_run - ts.skipped_steps) * batch_size


def summary(parts: RunParts, head: dict, split_name: str, *, train_seconds: float, stopped_early: bool) -> dict:
    """summary.json's fields (without the EMA's numbers)."""
    cfg, data, ts, tc = parts.cfg, parts.data, parts.state, parts.cfg.train
    rows, budget, spe = ts.rows, ts.budget, parts.steps_per_epoch
    steps_run = len(rows) * spe if budget is None else min(len(rows) * spe, budget.total)
    return {
        "run": parts.run_dir.name,
        "dataset": data.name,
        "model": cfg.model.name,
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "input": {
            "channels": data.channels,
            "size": list(data.image_size),
            "mean": list(parts.mean),
            "std": list(parts.std),
        },
        "split_sizes": {
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test) if data.test is not None else 0,
        },
        "task": task_of(data.train).name,
        "class_counts": {"train": data.train.class_counts(data.num_classes)},
        "class_balance": class_balance(cfg, data),
        "skipped_files": len(data.skipped),
        "epochs": parts.planned_epochs(),
        "time_budget": tc.time_budget or None,
        "time_limit": tc.time_limit or None,
        "steps": steps_run,
        "epochs_run": len(rows),
        "stopped_early": stopped_early,
        "train_seconds": round(train_seconds, 2),
        "images_per_second": round(_images_trained(ts, steps_run, tc.batch_size) / train_seconds, 1),
        "best_epoch": ts.stopper.best_epoch,
        "monitor": tc.monitor,
        "best_val_accuracy": max((r["val_accuracy"] for r in rows), default=float("nan"))
        if tc.monitor != "val_accuracy"
        else ts.stopper.best,
        "nonfinite_steps_skipped": ts.skipped_steps,
        "test": head if split_name == "test" else None,
        "val": head if split_name == "val" else None,
        "tta": cfg.eval.tta,
        "device": str(parts.device),
        "processes": parts.world_size,
        "compiled": bool(getattr(parts.train_model, "compiled", False)),
        "parameters": sum(p.numel() for p in parts.model.parameters()),
        "cnnkit_version": parts.env["cnnkit"],
    }


def finish_run(
    parts: RunParts,
    hooks: Hooks,
    final: tuple[str, dict, dict | None],
    *,
    train_seconds: float,
    stopped_early: bool,
    out: TextIO,
) -> Run:
    """Write summary.json, the plots and the report (last.ckpt marked finished), call on_end, print the final line."""
    split_name, metrics, metrics_ema = final
    data, ts = parts.data, parts.state
    task = task_of(data.train)
    head = headline(metrics, task)
    stopped_early = stopped_early or (
        ts.stopper.should_stop and len(ts.rows) < parts.planned_epochs()
    )  # also when resumed after it stopped
    info = summary(parts, head, split_name, train_seconds=train_seconds, stopped_early=stopped_early)
    if metrics_ema is not None:
        info[f"{split_name}_ema"] = headline(metrics_ema, task)
    acc = head["accuracy"]
    what = task.describe(split_name, head) or (
        f"{split_name} mean AP {head['mean_ap']:.4f}, exact match {acc:.2%}"
        if data.multi_label
        else f"{split_name} accuracy {acc:.2%}"
    )
    result = result_text(
        what, ts.stopper.best_epoch, split_name
    )  # the validation split that chose the epoch is labelled optimistic
    final_line = f"{result}, {train_seconds:.1f}s of training. Run folder: {parts.run_dir}"
    write_results(
        parts.folder,
        parts.cfg,
        data,
        info,
        ts.rows,
        metrics,
        split_name,
        result=result,
        final_line=final_line,
        out=out,
    )
    run = Run(parts.folder, parts.cfg, ts.rows, info, model=parts.model)
    if hooks.on_end is not None:
        hooks.on_end(run)
    print(final_line, file=out, flush=True)  # even with --quiet: the result and where the run is
    return run
