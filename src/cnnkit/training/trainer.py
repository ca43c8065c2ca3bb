"""`train(config) -> Run`: build data and model, fit, evaluate, and write the run folder.

The parts: `setup_run` (training/setup.py) builds everything a run trains with; the epochs
run here, top to bottom (`_run_epochs` -> `_train_epoch` -> loop.train_one_epoch, with
`_StepHook` after every step); `finish_run` (training/finish.py) writes the results.

last.ckpt holds the model (self-describing, like best.ckpt) plus `train_state` (its layout
and version: training/state.py): optimiser, scheduler, scaler, EMA, epoch/step, every RNG
state, the epoch's data order and position, the metric rows so far and the early-stopping
record. `train(resume=run_dir)` continues from it and ends with the same metrics and weights
as an uninterrupted run (same seed, CPU).

Class imbalance: `optim.class_weights` (balanced | sqrt) builds a weighted loss (training/losses.py)
and `data.balance: sampler` draws each epoch's order class-balanced (stored like any order, so
resume stays exact). Multi-label data (manifest rows with several labels) trains with BCE,
reports exact match as accuracy and per-class AP / mean AP at the end; its checkpoints say
`task: multi_label`.

Hooks for other areas (keyword arguments of `train`, gathered in training/hooks.py's `Hooks`
with their call order): `loss_fn`, `batch_transform` (mixup / cutmix), `param_groups`,
`perturb_batch` (adversarial training), `on_step(epoch, step, loss)` and `on_end(run)`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import torch

from cnnkit.config import Config, load_config
from cnnkit.data.stream import FileImages, is_streamed
from cnnkit.data.types import Split
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.models import transfer
from cnnkit.models.auto import auto_model
from cnnkit.training import auto, distributed, head_only
from cnnkit.training.data_warnings import data_warnings
from cnnkit.training.finish import Run, finish_run
from cnnkit.training.hooks import BatchTransform, Hooks, LossFn, PerturbBatch, StepHook
from cnnkit.training.interrupt import GracefulInterrupt, TrainingInterrupted
from cnnkit.training.loop import (
    EpochState,
    LossSpec,
    NonFiniteLossError,
    PrecisionSpec,
    Sharding,
    StepPolicy,
    evaluate,
    train_one_epoch,
)
from cnnkit.training.progress import Progress
from cnnkit.training.recipes import apply_recipe
from cnnkit.training.resolve import model_kwargs as _model_kwargs
from cnnkit.training.resolve import resolve_auto_model, resolve_config
from cnnkit.training.results import final_evaluation, write_skipped_csv
from cnnkit.training.run_files import METRIC_COLUMNS, nan_message, save, warn, write_metrics
from cnnkit.training.setup import RunParts, setup_run
from cnnkit.training.setup import check_config as _check
from cnnkit.training.setup import epoch_sampler as _epoch_sampler
from cnnkit.training.setup import finetune_groups as _finetune_groups
from cnnkit.training.setup import init_from_data as _init_from_data
from cnnkit.training.threads import follow_load

__all__ = [
    "METRIC_COLUMNS",
    "Hooks",
    "Run",
    "RunParts",
    "StepHook",
    "auto_model",
    "resolve_auto_model",
    "resolve_config",
    "resume_config",
    "train",
]
_COMPAT = (
    _check,
    _epoch_sampler,
    _finetune_groups,
    _init_from_data,
    _model_kwargs,
)  # older imports of trainer._name keep working


def resume_config(run_dir: str | Path) -> Config:
    """The saved config of a run folder (what `cnnkit train --resume` continues with).

    Bit-identical parity with an uninterrupted run needs the same device and thread count
    (train.num_threads / --threads): float reductions depend on how work is split.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: no config.yaml here; --resume takes a run folder written by cnnkit train")
    return load_config(run_dir / "config.yaml")


def train(
    config: Config | None = None,
    *,
    stream: TextIO | None = None,
    interactive: bool | None = None,
    quiet: bool = False,
    resume: str | Path | None = None,
    run_dir: Path | None = None,
    loss_fn: LossFn | None = None,
    batch_transform: BatchTransform | None = None,
    param_groups: Callable[[torch.nn.Module], list[dict]] | None = None,
    on_step: StepHook | None = None,
    on_end: Callable[[Run], None] | None = None,
    perturb_batch: PerturbBatch | None = None,
    hooks: Hooks | None = None,
) -> Run:
    """Train a model as `config` says and write a complete run folder. Returns the Run.

    resume: a run folder to continue from its last.ckpt (its config.yaml is used when
    `config` is None). run_dir: an existing empty folder to write to (the multi-process
    launcher's). The hook keywords fill a `Hooks` (training/hooks.py); `hooks` gives them
    all at once (a keyword set as well replaces its entry). Raises TrainingInterrupted
    (exit_code 130/143) after Ctrl-C / SIGTERM.
    """
    given: dict[str, Any] = {
        "loss_fn": loss_fn,
        "batch_transform": batch_transform,
        "param_groups": param_groups,
        "on_step": on_step,
        "on_end": on_end,
        "perturb_batch": perturb_batch,
    }
    hooks = dataclasses.replace(hooks or Hooks(), **{k: v for k, v in given.items() if v is not None})
    if resume is not None:
        resume = Path(resume)
        cfg = config or resume_config(resume)
    else:
        cfg = config or Config()
    if resume is None:  # a resumed run continues exactly as configured (its config.yaml holds the expanded recipe)
        note = (
            None
            if quiet or distributed.world()[0] != 0
            else lambda text: print(text, file=stream or sys.stdout, flush=True)
        )
        cfg = apply_recipe(
            auto.plan(cfg, note)
        )  # photo defaults (training/auto.py), then the tuned settings under the keys the config sets
    if cfg.adv.method != "none" and hooks.perturb_batch is None:  # its hooks live above the engine (cnnkit.robust)
        raise ConfigError(
            f"adv.method {cfg.adv.method}: train(config) alone does not train adversarially; "
            "pass hooks=cnnkit.robust.training.train_hooks(config) (the cnnkit train command does)"
        )
    tc = cfg.train
    _check(cfg, distributed.world()[1])
    prev_threads = torch.get_num_threads()
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    else:  # auto: the cores other programs leave free, re-checked while training (training/threads.py)
        hooks = dataclasses.replace(
            hooks, on_step=follow_load(hooks.on_step, tc.device, None if quiet else (stream or sys.stderr))
        )
    try:
        parts, hooks = setup_run(cfg, resume=resume, run_dir=run_dir, quiet=quiet, hooks=hooks)
        return _train(parts, hooks, stream=stream, interactive=interactive)
    finally:
        torch.set_num_threads(prev_threads)  # a library call leaves the process as it found it


@dataclass
class _Session:
    """What the epochs of one run share: its parts and hooks, the progress display, the interrupt
    flag, the training clock, what the model steps on (the cached head, or the model itself)
    and the last saved position (for the NaN message)."""

    parts: RunParts
    hooks: Hooks
    progress: Any
    interrupt: Any
    t_train: float
    step_model: torch.nn.Module
    train_split: Split
    val_model: torch.nn.Module
    val_split: Split
    feed: Any
    saved: dict
    skipped_files: int = 0
    stopped_early: bool = False


def _train(parts: RunParts, hooks: Hooks, *, stream: TextIO | None, interactive: bool | None) -> Run:
    tc, ts = parts.cfg.train, parts.state
    prev_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(tc.deterministic, warn_only=True)
    t_train = time.perf_counter() - ts.train_seconds
    try:
        with (
            Progress(
                parts.planned_epochs(), parts.steps_per_epoch, stream=stream, interactive=interactive, quiet=parts.quiet
            ) as progress,
            GracefulInterrupt(progress.message) as interrupt,
        ):
            s = _Session(
                parts,
                hooks,
                progress,
                interrupt,
                t_train,
                parts.train_model,
                parts.data.train,
                parts.model,
                parts.data.val,
                parts.normalize,
                saved={"epoch": ts.epoch, "step": ts.epoch_state.step if ts.epoch_state is not None else 0},
            )
            _announce(s)
            _run_epochs(s)
            train_seconds = time.perf_counter() - s.t_train
            if not parts.is_main:
                return Run(parts.folder, parts.cfg, ts.rows, {}, model=parts.model)
            final = final_evaluation(
                parts.model, ts.ema, parts.folder, parts.data, parts.cfg, parts.normalize
            )  # from best.ckpt, on the test split only
    finally:
        torch.use_deterministic_algorithms(prev_deterministic)
        if parts.writer is not None:
            parts.writer.close()
    return finish_run(
        parts,
        hooks,
        final,
        train_seconds=train_seconds,
        stopped_early=s.stopped_early,
        quiet=parts.quiet,
        out=stream or sys.stdout,
    )


def _announce(s: _Session) -> None:
    """The run's first lines; head-only training's feature cache (the model steps on the head alone)."""
    p, ts, tc, data, cfg = s.parts, s.parts.state, s.parts.cfg.train, s.parts.data, s.parts.cfg
    resumed = p.ckpt is not None
    start = ts.epoch + 1
    verb, at = (
        (
            "resuming",
            f" from epoch {start}" + (f", step {ts.epoch_state.step + 1}" if ts.epoch_state is not None else ""),
        )
        if resumed
        else ("training", "")
    )
    if resumed and (
        start > p.planned_epochs() or ts.stopper.should_stop
    ):  # the end-of-run files had failed to be written
        verb, at = "every epoch is done; repeating only the final evaluation of", ""
    s.progress.message(
        f"cnnkit: {verb} {cfg.model.name} on {data.name} ({len(data.train)} train / {len(data.val)} val"
        f"{f' / {len(data.test)} test' if data.test is not None else ''} images, {data.num_classes} classes) "
        f"on {p.device}{f' x {p.world_size} processes' if p.world_size > 1 else ''}{at}; run folder {p.run_dir}"
    )
    if p.is_main:  # even with --quiet (stderr): imbalance and unreadable files, one line each
        for line in data_warnings(cfg, data, p.folder):
            warn(line)
    if is_streamed(data.train):
        assert isinstance(data.train.images, FileImages)  # what is_streamed checked
        s.progress.message(
            f"cnnkit: streaming the images from their files, decoded in {data.train.images.workers} DataLoader workers (data.stream, data.cache_max_gb)"
        )
    if not resumed and cfg.model.finetune == "fine_tune":  # its first stage: the head alone, on features computed once
        head_only.warm_up_head(
            p.model,
            data.train,
            data.val,
            p.normalize,
            epochs=cfg.model.head_epochs,
            lr=cfg.optim.lr * 3,
            weight_decay=cfg.optim.weight_decay,
            batch_size=tc.batch_size,
            seed=tc.seed,
            precision=tc.precision,
            eval_batch_size=tc.eval_batch_size,
            message=s.progress.message,
        )
    if p.world_size == 1 and transfer.use_feature_cache(
        cfg.model, augmenting=p.augment.active or p.batch_transform is not None or s.hooks.perturb_batch is not None
    ):
        cached = head_only.prepare(
            p.model,
            data.train,
            data.val,
            p.normalize,
            batch_size=tc.eval_batch_size,
            precision=tc.precision,
            message=s.progress.message,
        )
        s.step_model, s.train_split, s.val_model, s.val_split, s.feed = (
            cached.head,
            cached.train,
            cached.head,
            cached.val,
            cached.feed,
        )
    elif cfg.model.finetune == "head" and cfg.model.cache_features:
        s.progress.message(
            "cnnkit: head-only training with augmentation passes every image through the backbone each epoch; --augment none computes its features once (seconds on a CPU)"
        )
    s.skipped_files = len(data.skipped)
    if ts.budget is not None:
        s.progress.message(
            f"cnnkit: time budget {tc.time_budget:.0f} s: the number of steps is planned from the measured speed (train.epochs is not used)"
        )
    if p.resize is not None and s.step_model is not p.train_model:
        s.progress.message(
            "cnnkit: progressive resizing does not apply to head-only training on cached features; every epoch uses the full size"
        )
        p.resize = None
        if ts.budget is not None:
            ts.budget.work = _flat_work
    elif p.resize is not None:
        h, w = p.resize.size(1, p.planned_epochs())
        s.progress.message(
            f"cnnkit: progressive resizing: {h}x{w} px in epoch 1, growing to the full {data.image_size[0]}x{data.image_size[1]} "
            f"by {tc.progressive_end:.0%} of the epochs (train.progressive_resize)"
        )


def _flat_work(epoch: int, epochs: int) -> float:
    return 1.0


def _run_epochs(s: _Session) -> None:
    """Epochs from where the run stands while the (possibly re-planned) number of epochs allows."""
    p, ts = s.parts, s.parts.state
    epoch = ts.epoch + 1
    while epoch <= p.planned_epochs():
        if ts.stopper.should_stop:
            break
        _train_epoch(s, epoch)
        if ts.stopper.should_stop and epoch < p.planned_epochs():
            s.stopped_early = True
            tc = p.cfg.train
            s.progress.message(
                f"cnnkit: early stopping: {tc.monitor} has not improved for {ts.stopper.patience} epochs (best {ts.stopper.best:.4g} at epoch {ts.stopper.best_epoch})"
            )
        epoch += 1


def _replan(s: _Session, update: Callable[..., Any], *args) -> None:
    """A time budget's new plan, the same on every process."""
    p, budget = s.parts, s.parts.state.budget
    update(*args)
    if p.world_size > 1:
        budget.total = int(distributed.broadcast_object(budget.total))
    if p.state.lookahead is not None:
        p.state.lookahead.total = budget.total
    s.progress.epochs = p.planned_epochs()


def _save_last(s: _Session, ck: dict | None = None) -> None:
    """last.ckpt at the position in `parts.state` (mid-epoch: epoch_state set; between epochs: None).
    With several processes every rank calls it: their running sums are gathered (a collective)."""
    p, ts = s.parts, s.parts.state
    ts.train_seconds = time.perf_counter() - s.t_train
    sums = (
        distributed.gather_epoch_sums(ts.epoch_state, p.device)
        if p.world_size > 1 and ts.epoch_state is not None
        else None
    )
    if p.is_main:
        ck = ck if ck is not None else p.model_checkpoint(ts.epoch, {})
        save({**ck, "train_state": ts.state_dict(epoch_sums=sums)}, p.run_dir / "last.ckpt")
    s.saved.update(epoch=ts.epoch, step=ts.epoch_state.step if ts.epoch_state is not None else 0)


class _StepHook:
    """Called by train_one_epoch after every optimiser step of `epoch`: the time budget's plan,
    lookahead, progress, the user's on_step, step checkpoints, and stopping on Ctrl-C / SIGTERM."""

    def __init__(self, s: _Session, epoch: int):
        self.s, self.epoch = s, epoch

    def __call__(self, step: int, steps: int, loss: float, acc: float, images: int) -> None:
        s, epoch = self.s, self.epoch
        p, ts, tc = s.parts, s.parts.state, s.parts.cfg.train
        if (
            ts.budget is not None and not ts.budget.planned and p.world_size == 1
        ):  # several processes plan at the epoch's end
            _replan(s, ts.budget.observe, (epoch - 1) * p.steps_per_epoch + step, time.perf_counter() - s.t_train)
        if ts.lookahead is not None:
            ts.lookahead.update(p.model)
        s.progress.step(step, steps, loss, acc, images)
        if s.hooks.on_step is not None:
            s.hooks.on_step(epoch, step, loss)
        global_step = (epoch - 1) * steps + step
        if tc.checkpoint_every and global_step % tc.checkpoint_every == 0 and step < steps:
            _save_last(s)
        stop = s.interrupt.requested
        if p.world_size > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=p.device)
            torch.distributed.all_reduce(flag)
            stop = float(flag) > 0
        if stop:
            _save_last(s)
            raise TrainingInterrupted(  # printed once, by whoever catches it (the CLI)
                f"interrupted at epoch {epoch}, step {step}; resume with: cnnkit train --resume {p.run_dir}",
                s.interrupt.exit_code,
            )


def _train_epoch(s: _Session, epoch: int) -> None:
    """One epoch: train, evaluate, record the row, save the checkpoints."""
    p, ts, cfg = s.parts, s.parts.state, s.parts.cfg
    s.progress.start_epoch(epoch)
    size = p.resize.size(epoch, p.planned_epochs()) if p.resize is not None else None
    t0 = time.perf_counter()
    if ts.epoch_state is None:
        ts.epoch_state = EpochState.start(len(p.data.train), ts.generator, sampler=p.epoch_sampler)
        ts.epoch_lr = ts.optimizer.param_groups[0]["lr"]
    lr = ts.epoch_lr
    if cfg.model.finetune:
        transfer.start_epoch(p.model, cfg.model, epoch - 1, p.planned_epochs())  # gradual unfreezing
    tr = _fit_epoch(s, epoch, size)
    ts.skipped_steps += tr["skipped_steps"]
    ts.epoch_state, ts.epoch_lr = None, None
    if ts.budget is not None:  # re-plan before deciding whether this epoch was the last
        _replan(
            s, ts.budget.end_epoch, min(epoch * p.steps_per_epoch, ts.budget.total), time.perf_counter() - s.t_train
        )
    if ts.lookahead is not None and epoch >= p.planned_epochs():
        ts.lookahead.finish(p.model)  # the last epoch ends on the averaged weights
    row = _epoch_row(s, epoch, tr, lr, t0)
    _end_epoch(s, epoch, row)


def _fit_epoch(s: _Session, epoch: int, size: tuple[int, int] | None) -> dict:
    """loop.train_one_epoch with this run's parts; a non-finite loss becomes an error that says where and what to do."""
    p, ts, tc, cfg = s.parts, s.parts.state, s.parts.cfg.train, s.parts.cfg
    try:
        return train_one_epoch(
            s.step_model,
            s.train_split,
            optimizer=ts.optimizer,
            scheduler=None if p.per_epoch_schedule else ts.scheduler,
            normalize=s.feed,
            batch_size=tc.batch_size,
            generator=ts.generator,
            augment=p.augment,
            loss=LossSpec(p.loss_fn, cfg.optim.label_smoothing, cfg.optim.l1, p.l1_params),
            amp=PrecisionSpec(tc.precision, ts.scaler),
            shard=Sharding(p.rank, p.world_size),
            policy=StepPolicy(cfg.optim.grad_clip, tc.on_nan),
            batch_transform=p.batch_transform,
            perturb_batch=s.hooks.perturb_batch,
            ema=ts.ema,
            state=ts.epoch_state,
            set_train_mode=partial(transfer.start_epoch, p.model, cfg.model, epoch - 1, p.planned_epochs())
            if cfg.model.finetune
            else None,
            on_step=_StepHook(s, epoch),
            stop_at=partial(ts.budget.steps_in_epoch, epoch) if ts.budget is not None else None,
            epoch=epoch,
            resize_to=size if size != tuple(p.data.image_size) else None,
        )
    except NonFiniteLossError as e:
        last = e.last_finite if e.last_finite is not None else (ts.rows[-1]["train_loss"] if ts.rows else None)
        spe = p.steps_per_epoch
        raise NonFiniteLossError(
            nan_message(
                e,
                epoch=epoch,
                steps=spe,
                global_step=(epoch - 1) * spe + e.step,
                last_finite=last,
                lr=ts.optimizer.param_groups[0]["lr"],
                precision=tc.precision,
                run_dir=p.folder,
                saved_epoch=s.saved["epoch"],
                saved_step=s.saved["step"],
            ),
            step=e.step,
            value=e.value,
            last_finite=last,
        ) from None


def _epoch_row(s: _Session, epoch: int, tr: dict, lr: float | None, t0: float) -> dict:
    """The epoch's metrics row: training numbers, validation (and the EMA's) numbers."""
    p, ts, tc = s.parts, s.parts.state, s.parts.cfg.train
    va = evaluate(s.val_model, s.val_split, normalize=s.feed, batch_size=tc.eval_batch_size, precision=tc.precision)
    if p.is_main and len(p.data.skipped) > s.skipped_files:  # streaming finds unreadable files as it reads them
        s.skipped_files = len(p.data.skipped)
        write_skipped_csv(p.folder, p.data.skipped)
    if p.world_size > 1:  # rank 0's numbers decide for everyone (BatchNorm buffers may differ a little)
        va = distributed.broadcast_object(va)
    row = {
        "epoch": epoch,
        "train_loss": tr["loss"],
        "train_accuracy": tr["accuracy"],
        "val_loss": va["loss"],
        "val_accuracy": va["accuracy"],
        "lr": lr,
        "seconds": time.perf_counter() - t0,
    }
    if "l1" in tr:
        row["train_l1"] = tr["l1"]
    if ts.ema is not None:
        ve = evaluate(
            ts.ema.module, p.data.val, normalize=p.normalize, batch_size=tc.eval_batch_size, precision=tc.precision
        )
        row.update(val_loss_ema=ve["loss"], val_accuracy_ema=ve["accuracy"])
    return row


def _end_epoch(s: _Session, epoch: int, row: dict) -> None:
    """Record the row: schedule and early stopping, progress, metrics.csv, TensorBoard, best.ckpt, last.ckpt."""
    p, ts, tc = s.parts, s.parts.state, s.parts.cfg.train
    ts.rows.append(row)
    if p.per_epoch_schedule:
        ts.scheduler.step(row[tc.monitor])
    improved = ts.stopper.update(
        row[tc.monitor], epoch, tiebreak=row["val_loss"] if tc.monitor == "val_accuracy" else None
    )
    s.progress.end_epoch(row)  # shown before the files are written: a full disk does not hide the numbers
    ts.epoch = epoch
    ck = None
    if p.is_main:
        write_metrics(ts.rows, p.run_dir / "metrics.csv")
        if p.writer is not None:
            for k, v in row.items():
                if k != "epoch":
                    p.writer.add_scalar(k, v, epoch)
            p.writer.flush()
        ck = p.model_checkpoint(epoch, {k: row[k] for k in METRIC_COLUMNS[1:]})
        if improved:  # before last.ckpt: if this save fails, resuming repeats the epoch and writes best.ckpt again
            save(ck, p.run_dir / "best.ckpt")
    _save_last(s, ck)
