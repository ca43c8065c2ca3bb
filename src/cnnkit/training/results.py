"""The end of a run: test metrics from the best checkpoint, summary.json, the report, the plots,
and last.ckpt marked finished (only once every result file exists, so `--resume` can write
missing ones again)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import TextIO

import torch

from cnnkit.checkpoint import CheckpointWriteError, atomic_save, load_checkpoint, unwrap
from cnnkit.config import Config
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Dataset
from cnnkit.evaluate.predict import predict_logits
from cnnkit.evaluate.tta import predict_logits_tta
from cnnkit.report import render_report
from cnnkit.rundir import atomic_write
from cnnkit.tasks import CLASSIFICATION, Task, task_of
from cnnkit.training.run_files import text, warn, write_final_files

FINAL_PRECISION = "fp32"


def final_evaluation(
    model: torch.nn.Module, ema, run_dir: Path, data: Dataset, cfg: Config, normalize: Normalize
) -> tuple[str, dict, dict | None]:
    """Load best.ckpt into `model` (and its EMA weights into `ema`) and score the test split (the
    validation split without one), with the configured TTA. Returns (split name, metrics, EMA metrics).

    In fp32 whatever precision trained (`FINAL_PRECISION`): `cnnkit evaluate`, `predict` and `serve`
    run the model in fp32, so the headline is the number they reproduce. (bf16 on a CPU moved one of
    150 photo-stand-in answers: 97.33 % in training's bf16 validation, 96.67 % in evaluate.)"""
    own = task_of(data.train).final_evaluation(model, ema, run_dir, data, cfg, normalize)  # e.g. segmentation's
    if own is not None:
        return own
    ec, precision = cfg.eval, FINAL_PRECISION
    best = torch.load(run_dir / "best.ckpt", map_location="cpu", weights_only=True)
    unwrap(model).load_state_dict(best["state_dict"])
    split = data.test if data.test is not None else data.val
    split_name = "test" if data.test is not None else "val"

    def logits(m) -> torch.Tensor:
        if ec.tta != "none":
            return predict_logits_tta(
                m,
                split,
                normalize=normalize,
                mode=ec.tta,
                batch_size=ec.batch_size,
                precision=precision,
                multi_label=data.multi_label,
            )
        return predict_logits(m, split, normalize=normalize, batch_size=ec.batch_size, precision=precision)

    from cnnkit.evaluate.metrics import (
        classification_metrics,
        multilabel_metrics,
    )  # torchmetrics takes seconds to import: rank 0 only, here

    metrics_fn = (
        multilabel_metrics if data.multi_label else classification_metrics
    )  # per-class AP / F1, mean AP for several labels
    final = metrics_fn(logits(model), split.labels, data.class_names)
    final_ema = None
    if ema is not None and "ema_state_dict" in best:
        ema.module.load_state_dict(best["ema_state_dict"])
        final_ema = metrics_fn(logits(ema.module), split.labels, data.class_names)
    return split_name, final, final_ema


def headline(final: dict, task: Task = CLASSIFICATION) -> dict:
    """summary.json's numbers from a final evaluation (the task's own, if it has them). Multi-label:
    `accuracy` is the exact match (every label right at sigmoid >= 0.5, as in metrics.csv), with mean AP and macro F1."""
    own = task.headline(final)
    if own is not None:
        return own
    if final.get("task") == "multilabel":
        keys = ("mean_ap", "exact_match", "loss", "num_samples")
        return {"accuracy": final["exact_match"], **{k: final[k] for k in keys}, "macro_f1": final["macro"]["f1"]}
    return {k: final[k] for k in ("accuracy", "loss", "top5_accuracy", "num_samples") if k in final}


def skipped_csv(skipped) -> str:
    """skipped.csv: the files the dataset could not use, and why."""
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(["path", "reason"])
    w.writerows((s.path, s.reason) for s in skipped)
    return out.getvalue()


def write_skipped_csv(run_dir: Path, skipped) -> None:
    """skipped.csv in the run folder, replaced atomically (at the start, and as streaming finds more)."""
    atomic_write(run_dir / "skipped.csv", lambda f: f.write(skipped_csv(skipped).encode("utf-8")))


def class_balance(cfg: Config, data: Dataset) -> dict:
    """What summary.json says about class imbalance: counts, ratio and the correction used."""
    from cnnkit.data.balance import imbalance_ratio
    from cnnkit.training.losses import loss_weights

    counts = data.train.class_counts(data.num_classes)
    w = loss_weights(cfg.optim.class_weights, data.train.labels, data.num_classes)
    return {
        "imbalance_ratio": round(imbalance_ratio(counts), 4),
        "balance": cfg.data.balance,
        "class_weights": cfg.optim.class_weights,
        "loss_weights": [round(float(v), 6) for v in w] if w is not None else None,
    }


def write_results(
    run_dir: Path,
    cfg: Config,
    data: Dataset,
    summary: dict,
    rows: list[dict],
    final: dict,
    split_name: str,
    *,
    result: str,
    final_line: str,
    out: TextIO,
) -> None:
    """Write the result files, each atomically. If any cannot be written, the final line is still
    shown (`result`, the metrics, goes into the error) and last.ckpt stays unfinished, so
    `cnnkit train --resume` writes them again."""
    from cnnkit.evaluate.plots import plot_confusion_matrix, plot_learning_curves, plot_per_class

    best_epoch = summary["best_epoch"]
    plots = run_dir / "plots"
    with contextlib.suppress(OSError):
        plots.mkdir(exist_ok=True)
    if data.multi_label:  # no confusion matrix for several labels per image: per-class AP and F1 instead
        per_class = (
            plots / "per_class.png",
            lambda f: plot_per_class(final, f, title=f"Per-class AP and F1 ({split_name}, best epoch {best_epoch})"),
        )
    else:
        per_class = (
            plots / "confusion_matrix.png",
            lambda f: plot_confusion_matrix(
                final["confusion_matrix"],
                data.class_names,
                f,
                title=f"Confusion matrix ({split_name}, best epoch {best_epoch})",
            ),
        )
    try:
        write_final_files(
            run_dir,
            [
                (run_dir / f"{split_name}_metrics.json", text(json.dumps(final, indent=2))),
                (run_dir / "summary.json", text(json.dumps(summary, indent=2))),
                (run_dir / "report.md", text(render_report(run_dir, cfg, summary, rows, final, data.skipped))),
                (
                    plots / "learning_curves.png",
                    lambda f: plot_learning_curves(rows, f, accuracy="exact match" if data.multi_label else "accuracy"),
                ),
                per_class,
            ],
            result,
        )
    except CheckpointWriteError:
        print(final_line, file=out, flush=True)  # even with --quiet, as when the files are written
        raise
    if cfg.run.html_report:  # optional: a failure is a warning, and `cnnkit report` rebuilds it
        try:
            from cnnkit.report.html import write_html_report

            write_html_report(run_dir)
        except Exception as e:  # the run itself is complete: a report failure must not lose it
            warn(
                f"report.html could not be written ({type(e).__name__}: {e}); rebuild it with: cnnkit report {run_dir}"
            )
    try:
        last = load_checkpoint(run_dir / "last.ckpt")
        last["train_state"]["finished"] = True
        atomic_save(last, run_dir / "last.ckpt")
    except (
        OSError
    ) as e:  # every result is written; only a later --resume would repeat the final evaluation instead of refusing
        warn(
            f"{run_dir / 'last.ckpt'} could not be marked finished ({e.strerror or e}); the run is complete and its files are written"
        )
