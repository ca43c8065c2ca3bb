"""`cnnkit train --task detect`: Faster R-CNN trained by its own small epoch loop.

Why not the engine (training/): its step is `loss_fn(model(x), y)` on a stacked label tensor and its
state, validation, checkpoints and reports assume a (N,)/(N, H, W) label tensor per split; Faster R-CNN
takes lists of images and per-image box dicts and returns its four losses itself in train mode. Fitting
that through would touch setup, loop, step, validate and results; this loop instead reuses the engine's
pieces that carry no label assumption: the run folder (rundir.create_run_dir, never overwritten), atomic
files (checkpoint.atomic_save, rundir.atomic_write_text, config.save_config), seeding (device.seed_everything)
and the device choice (device.resolve_device).

A run folder holds config.yaml, metrics.csv (one row per epoch: train losses, val mAP@0.5 and
mAP@[.5:.95], seconds), last.ckpt (every epoch, and at a stop mid-epoch: with the optimiser, schedule, RNG,
rows, the step, the epoch's order and loss sums, so --resume ends bit-identical to an unstopped run), best.ckpt
(best val mAP@0.5), summary.json (best.ckpt on the test split, else val), plots/ (evaluation.py's PR curves,
drawn boxes and metrics.json, the loss curves), report.md and report.html (report.py). Keys used: data.*, model.name
(auto = fasterrcnn_tiny) and model.kwargs (anchors: model.py), optim.* (the untouched classification default,
SGD at 0.2, means AdamW at 1e-3 here), train.epochs, train.batch_size, train.seed, train.time_budget or
train.time_limit (either stops after the epoch that passes it), runtime.device, runtime.num_threads, run.*.
Training batches get box-aware augmentation from the augment section (data/box_augment.py).
Models (model.py): fasterrcnn_tiny, fasterrcnn_lite0 (--pretrained), fasterrcnn_mobilenet, fcos_tiny (one-stage).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from cnnkit.checkpoint import atomic_save
from cnnkit.config import Config, OptimConfig, save_config
from cnnkit.data.box_augment import BoxAugment, box_augment
from cnnkit.data.detection import DetectionData
from cnnkit.data.detection_layout import read_detection_folder
from cnnkit.device import resolve_device, seed_everything
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.rundir import atomic_write_text, create_run_dir
from cnnkit.tasks.detect.metrics import evaluate_map
from cnnkit.tasks.detect.model import as_targets, count_parameters, create_detector

FORMAT = "cnnkit-detect-1"
WARMUP_STEPS = 50
LOSSES = ("loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg")


def load_detection_data(cfg: Config) -> DetectionData:
    """mnist-scenes' boxes, or a folder in COCO, VOC or YOLO layout (--data DIR: data/detection_layout.py)."""
    if cfg.data.dataset == "mnist-scenes":
        from cnnkit.data.scenes import build_scenes_detection

        return build_scenes_detection(cfg.data)
    if cfg.data.dataset == "folder" and (path := cfg.data.path):
        d = cfg.data
        return read_detection_folder(path, channels=d.channels, strict=d.strict, size=d.image_size)
    raise ConfigError(
        f"--task detect: dataset {cfg.data.dataset!r} has no boxes; use --dataset mnist-scenes or --data DIR "
        "(a folder in COCO, PASCAL VOC or YOLO layout with train and val splits)"
    )


def model_name(cfg: Config) -> str:
    return "fasterrcnn_tiny" if cfg.model.name == "auto" else cfg.model.name


def make_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    o = cfg.optim
    if o == OptimConfig():  # the classification default (SGD, lr 0.2) is far too hot for a detector
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.RMSprop(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def warmup_steps(total: int) -> int:
    """Linear warm-up length: WARMUP_STEPS, or a tenth of a shorter run (so a short run still reaches its rate)."""
    return max(1, min(WARMUP_STEPS, total // 10))


def detect_scheduler(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 1/warm of the rate, then cosine to 0 over `total` steps (the engine's shape; its
    training.optim sits above tasks, so not imported)."""
    warm = warmup_steps(total)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm - 1))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _checkpoint(
    model: torch.nn.Module, data: DetectionData, cfg: Config, name: str, state: dict[str, Any] | None
) -> dict[str, Any]:
    mean, std = _stats(data)
    return {
        "format": FORMAT,
        "task": "detect",
        "model": {"name": name, "kwargs": dict(cfg.model.kwargs)},
        "class_names": list(data.class_names),
        "input": {
            "channels": data.channels,
            "size": list(data.train.images.shape[2:]),
            "mean": list(mean),
            "std": list(std),
        },
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": cfg.to_dict(),
        "dataset": data.name,
        "train_state": state,
    }


def load_detector_checkpoint(path: str | Path) -> dict[str, Any]:
    """A detection checkpoint (a run folder means its best.ckpt, else last.ckpt), read with weights_only."""
    p = Path(path)
    if p.is_dir():
        p = next((p / n for n in ("best.ckpt", "last.ckpt") if (p / n).is_file()), p / "best.ckpt")
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint not found")
    ckpt = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a cnnkit detection checkpoint (format {FORMAT})")
    return ckpt


def detector_from_checkpoint(ckpt: dict[str, Any]) -> torch.nn.Module:
    inp = ckpt["input"]
    model: torch.nn.Module = create_detector(
        ckpt["model"]["name"],
        len(ckpt["class_names"]),
        inp["channels"],
        max(inp["size"]),
        inp["mean"],
        inp["std"],
        ckpt["model"]["kwargs"],
    )
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model


def _write_rows(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / "metrics.csv", buf.getvalue())


def is_detection_run(path: str | Path | None) -> bool:
    """Whether `path` is a run folder whose last.ckpt is a detection checkpoint (for --resume)."""
    if not path or not (Path(path) / "last.ckpt").is_file():
        return False
    try:
        return bool(load_detector_checkpoint(Path(path) / "last.ckpt")["task"] == "detect")
    except Exception:  # the engine's resume reports what is wrong with the file
        return False


class StopFlag(Protocol):
    @property
    def requested(self) -> bool: ...  # True (a signal handler: training/detect.py): stop after the step in progress


@dataclass
class _Loop:
    """What a run carries from step to step, and what last.ckpt's train_state restores."""

    cfg: Config
    data: DetectionData
    device: torch.device
    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    augment: BoxAugment | None = None  # box-aware, train split only (data/box_augment.py)
    run_dir: Path = Path()
    rows: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0  # epochs finished
    step: int = 0  # steps of the epoch in progress finished (an interrupted run: > 0)
    order: list[int] = field(default_factory=list)  # the epoch in progress' image order
    sums: dict[str, float] = field(default_factory=dict)  # its loss sums so far
    best: float = -1.0
    seconds: float = 0.0

    def train_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "order": self.order,
            "sums": self.sums,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "rows": self.rows,
            "best": self.best,
            "seconds": self.seconds,
        }

    def load(self, last: dict[str, Any]) -> None:
        state = last["train_state"]
        self.model.load_state_dict(last["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.rows, self.epoch, self.best, self.seconds = state["rows"], state["epoch"], state["best"], state["seconds"]
        self.step, self.order, self.sums = state.get("step", 0), state.get("order", []), state.get("sums", {})

    def save_last(self) -> None:
        atomic_save(
            _checkpoint(self.model, self.data, self.cfg, self.name, self.train_state()), self.run_dir / "last.ckpt"
        )


def train_detection(
    cfg: Config | None,
    *,
    data: DetectionData | None = None,
    resume: str | Path | None = None,
    quiet: bool = False,
    stop: StopFlag | None = None,
) -> Path:
    """Train, checkpoint every epoch, score best.ckpt on the test split; returns the run folder.
    With `resume` (a run folder), its last.ckpt's config and state continue in the same folder (cfg unused),
    mid-epoch too. `stop.requested` ends the run after the step in progress, with last.ckpt written (then
    there is no summary.json)."""
    say = (lambda *a: None) if quiet else print
    last: dict[str, Any] = {}
    if resume is not None:
        last = load_detector_checkpoint(Path(resume) / "last.ckpt")
        cfg = Config.from_dict(last["config"], source=str(Path(resume) / "last.ckpt"))
    if cfg is None:
        raise ValueError("train_detection: a config, or a run folder to resume")
    if cfg.runtime.num_threads:
        torch.set_num_threads(cfg.runtime.num_threads)
    data = data or load_detection_data(cfg)
    device = resolve_device(cfg.runtime.device)
    generator = seed_everything(cfg.train.seed)
    name = model_name(cfg)
    mean, std = _stats(data)
    side = max(data.train.images.shape[2:])
    model = create_detector(
        name, data.num_classes, data.channels, side, mean, std, cfg.model.kwargs, cfg.model.pretrained
    ).to(device)
    optimizer = make_optimizer(cfg, model)
    steps_per_epoch = math.ceil(len(data.train) / cfg.train.batch_size)
    scheduler = detect_scheduler(optimizer, cfg.train.epochs * steps_per_epoch)
    loop = _Loop(
        cfg, data, device, name, model, optimizer, scheduler, generator, box_augment(cfg.augment, data, generator)
    )
    if resume is not None:
        loop.run_dir = Path(resume)
        loop.load(last)
        say(f"Resuming {loop.run_dir} after epoch {loop.epoch}" + (f", step {loop.step}" if loop.step else ""))
    else:
        loop.run_dir = create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=data.name, model=name)
        save_config(cfg, loop.run_dir / "config.yaml")
        if data.skipped:
            lines = "path,reason\n" + "".join(f'"{s.path}","{s.reason}"\n' for s in data.skipped)
            atomic_write_text(loop.run_dir / "skipped.csv", lines)
    say(
        f"Run folder: {loop.run_dir}\n{name}: {count_parameters(model):,} parameters, {data.num_classes} classes, "
        f"{len(data.train)} train / {len(data.val)} val images, {steps_per_epoch} steps per epoch on {device}"
    )
    while loop.epoch < cfg.train.epochs:
        limit = cfg.train.time_budget or cfg.train.time_limit  # both stop within train.epochs here
        if limit and loop.seconds >= limit and not loop.step:
            say(f"time {'budget' if cfg.train.time_budget else 'limit'} {limit:.0f} s spent after {loop.epoch} epochs")
            break
        if not _run_epoch(loop, say, stop):
            say(f"stopped after epoch {loop.epoch} step {loop.step}; last.ckpt saved")
            return loop.run_dir
    return finish_detection(loop.run_dir, data, device, loop.seconds, say)


def _run_epoch(loop: _Loop, say: Callable[..., Any], stop: StopFlag | None) -> bool:
    """The rest of the epoch in progress, validation, metrics.csv, best.ckpt, last.ckpt; False (last.ckpt
    written mid-epoch) when `stop` asked to stop."""
    cfg, data = loop.cfg, loop.data
    t0 = time.perf_counter()
    if not loop.step:
        loop.order = torch.randperm(len(data.train), generator=loop.generator).tolist()
        loop.sums = {}
    done = _train_epoch(
        loop.model,
        loop.optimizer,
        loop.scheduler,
        data,
        loop.order,
        cfg.train.batch_size,
        loop.device,
        loop.epoch,
        augment=loop.augment,
        start=loop.step,
        sums=loop.sums,
        stop=stop,
    )
    if done is not None:  # interrupted after `done` steps of this epoch
        loop.step, loop.seconds = done, loop.seconds + time.perf_counter() - t0
        loop.save_last()
        return False
    val = evaluate_map(loop.model, data.val, data.class_names, loop.device)
    loop.seconds += time.perf_counter() - t0
    loop.epoch, loop.step, sums = loop.epoch + 1, 0, loop.sums
    row = {"epoch": loop.epoch, **{k: round(v / len(data.train), 4) for k, v in sums.items()}}
    row |= {"val_map_50": val["map_50"], "val_map": val["map"], "seconds": round(loop.seconds, 1)}
    loop.rows.append(row)
    _write_rows(loop.run_dir, loop.rows)
    if val["map_50"] > loop.best:
        loop.best = val["map_50"]
        atomic_save(_checkpoint(loop.model, data, cfg, loop.name, None), loop.run_dir / "best.ckpt")
    loop.order, loop.sums = [], {}
    loop.save_last()
    say(
        f"epoch {loop.epoch}: loss {sum(sums.values()) / len(data.train):.4f}, val mAP@0.5 {val['map_50']:.4f}, "
        f"{loop.seconds:.0f} s"
    )
    return True


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    data: DetectionData,
    order: list[int],
    batch_size: int,
    device: torch.device,
    epoch: int,
    *,
    augment: BoxAugment | None = None,
    start: int = 0,
    sums: dict[str, float],
    stop: StopFlag | None = None,
) -> int | None:
    """The training scenes in `order` from step `start` on, adding each loss's image-weighted sum to `sums`;
    None when the epoch is done, else the steps done when `stop` asked to stop (after a whole step)."""
    model.train()
    for step, lo in enumerate(range(start * batch_size, len(order), batch_size), start + 1):
        idx = order[lo : lo + batch_size]
        ims, boxes, labels = (augment or BoxAugment.off()).batch(data.train, idx)
        images = [im.to(device).float().div_(255) for im in ims]
        targets = as_targets(boxes, labels, device)
        losses = model(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch + 1}: non-finite detection loss {losses}; lower optim.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(idx)
        if stop is not None and stop.requested:  # (after the last step too: validation on resume)
            return step
    return None


def _stats(data: DetectionData) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from cnnkit.data.types import channel_stats

    return channel_stats(data.train.images)


def finish_detection(
    run_dir: Path, data: DetectionData, device: torch.device, seconds: float, say: Callable[..., Any]
) -> Path:
    """best.ckpt on the test split (else val) -> summary.json, plots/ (PR curves, drawn boxes, metrics.json,
    the loss curves: evaluation.py, plots.py) for report.html; the final line."""
    from cnnkit.tasks.detect.evaluation import score_split, write_outputs
    from cnnkit.tasks.detect.plots import plot_curves

    best = detector_from_checkpoint(load_detector_checkpoint(run_dir / "best.ckpt")).to(device)
    split_name, split = ("test", data.test) if data.test is not None else ("val", data.val)
    final, preds = score_split(best, split, data.class_names, device)
    write_outputs(final | {"split": split_name}, split, preds, data.class_names, run_dir / "plots")
    plot_curves(list(csv.DictReader((run_dir / "metrics.csv").open())), run_dir / "plots" / "detect_curves.png")
    final = {k: v for k, v in final.items() if k != "pr_curves"}  # the curves: plots/metrics.json
    summary = {"task": "detect", "split": split_name, "train_seconds": round(seconds, 1), **final}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_reports(run_dir)
    say(f"{split_name} mAP@0.5 {final['map_50']:.4f}, mAP@[.5:.95] {final['map']:.4f} ({run_dir})")
    return run_dir


def write_reports(run_dir: Path) -> None:
    """report.md, and report.html unless run.html_report is off (tasks/detect/report.py's section)."""
    from cnnkit.tasks.detect.report import render_markdown

    atomic_write_text(run_dir / "report.md", render_markdown(run_dir))
    cfg = Config.from_dict(load_detector_checkpoint(run_dir / "last.ckpt")["config"], source=str(run_dir))
    if cfg.run.html_report:
        from cnnkit.report.html import write_html_report

        write_html_report(run_dir)
