"""`train(config) -> Run`: build data and model, fit, evaluate, and write the run folder.

The run, top to bottom (docs/architecture.md draws it):

    train                      recipes, photo defaults, checks, threads; then _train
      setup_run                training/setup.py: everything a run trains with (RunParts, TrainState)
      _train                   deterministic algorithms, progress, Ctrl-C; the Session
        announce               training/announce.py: the first lines (and the cached head for head-only runs)
        _run_epochs            while the (possibly re-planned) epochs allow, and early stopping has not fired
          _train_epoch         the epoch's order and rate, gradual unfreezing, then:
            _fit_epoch         loop.train_one_epoch, StepHook after every step (training/step_hook.py)
            epoch_row          training/epoch_end.py: validation (and EMA) numbers
            record_epoch       schedule, early stopping, metrics.csv, best.ckpt, last.ckpt
        final_evaluation       training/results.py: best.ckpt on the test split
      finish_run               training/finish.py: summary.json, plots, reports, on_end, the final line

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
`perturb_batch` (adversarial training), `on_step(epoch, step, loss)`, `on_epoch_end(epoch, row)` and `on_end(run)`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import torch

from cnnkit.config import Config, load_config
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.models import transfer
from cnnkit.models.auto import auto_model
from cnnkit.training import auto, distributed
from cnnkit.training.announce import announce
from cnnkit.training.epoch_end import epoch_row, record_epoch
from cnnkit.training.epoch_state import EpochState
from cnnkit.training.finish import Run, finish_run
from cnnkit.training.hooks import BatchTransform, EpochHook, Hooks, LossFn, PerturbBatch, StepHook
from cnnkit.training.interrupt import GracefulInterrupt
from cnnkit.training.loop import LossSpec, NonFiniteLossError, PrecisionSpec, Sharding, StepPolicy, train_one_epoch
from cnnkit.training.progress import Progress
from cnnkit.training.recipes import apply_recipe
from cnnkit.training.resolve import model_kwargs as _model_kwargs
from cnnkit.training.resolve import resolve_auto_model, resolve_config
from cnnkit.training.results import final_evaluation
from cnnkit.training.run_files import METRIC_COLUMNS
from cnnkit.training.session import Session, nonfinite_error, replan
from cnnkit.training.setup import RunParts, setup_run
from cnnkit.training.setup import check_config as _check
from cnnkit.training.setup import epoch_sampler as _epoch_sampler
from cnnkit.training.setup import finetune_groups as _finetune_groups
from cnnkit.training.setup import init_from_data as _init_from_data
from cnnkit.training.step_hook import StepHook as _StepHook
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
    (runtime.num_threads / --threads): float reductions depend on how work is split.
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
    on_epoch_end: EpochHook | None = None,
    on_end: Callable[[Run], None] | None = None,
    perturb_batch: PerturbBatch | None = None,
    hooks: Hooks | None = None,
) -> Run:
    """Train a model as `config` says and write a complete run folder. Returns the Run.

    resume: a run folder to continue from its last.ckpt (its config.yaml is used when
    `config` is None). run_dir: an existing empty folder to write to (the multi-process
    launcher's). The hook keywords fill a `Hooks` (training/hooks.py); `hooks` gives them
    all at once (a keyword set as well replaces its entry). quiet: no progress or notes, only
    the final line (the result and the run folder; warnings still go to stderr). Raises
    TrainingInterrupted (exit_code 130/143) after Ctrl-C / SIGTERM.
    """
    given: dict[str, Any] = {
        "loss_fn": loss_fn,
        "batch_transform": batch_transform,
        "param_groups": param_groups,
        "on_step": on_step,
        "on_epoch_end": on_epoch_end,
        "on_end": on_end,
        "perturb_batch": perturb_batch,
    }
    hooks = dataclasses.replace(hooks or Hooks(), **{k: v for k, v in given.items() if v is not None})
    resume = Path(resume) if resume is not None else None
    gan_cfg = config or (resume_config(resume) if resume else None)
    if gan_cfg is not None and gan_cfg.data.task == "gan":  # two networks, two optimisers: its own loop
        from cnnkit.training import gan

        return gan.train(gan_cfg, resume=resume, quiet=quiet, stream=stream)
    cfg = _run_config(config, resume, quiet=quiet, stream=stream)
    if cfg.adv.method != "none" and hooks.perturb_batch is None:  # its hooks live above the engine (cnnkit.robust)
        raise ConfigError(
            f"adv.method {cfg.adv.method}: train(config) alone does not train adversarially; "
            "pass hooks=cnnkit.robust.training.train_hooks(config) (the cnnkit train command does)"
        )
    _check(cfg, distributed.world()[1])
    prev_threads = torch.get_num_threads()
    if cfg.runtime.num_threads:
        torch.set_num_threads(cfg.runtime.num_threads)
    else:  # auto: the cores other programs leave free, re-checked while training (training/threads.py)
        hooks = dataclasses.replace(
            hooks, on_step=follow_load(hooks.on_step, cfg.runtime.device, None if quiet else (stream or sys.stderr))
        )
    try:
        parts, hooks = setup_run(cfg, resume=resume, run_dir=run_dir, quiet=quiet, hooks=hooks)
        return _train(parts, hooks, stream=stream, interactive=interactive)
    finally:
        torch.set_num_threads(prev_threads)  # a library call leaves the process as it found it


def _run_config(config: Config | None, resume: Path | None, *, quiet: bool, stream: TextIO | None) -> Config:
    """The config a run trains with: a resumed run's own (its config.yaml holds the expanded recipe, and it
    continues exactly as configured); a new run's with the photo defaults (training/auto.py), then the
    recipe's tuned settings under the keys the config sets."""
    if resume is not None:
        return config or resume_config(resume)
    note = None if quiet or distributed.world()[0] != 0 else partial(print, file=stream or sys.stdout, flush=True)
    return apply_recipe(auto.plan(config or Config(), note))


def _clock() -> float:
    """The training clock (this module's `time`, so that a test can replace it)."""
    return time.perf_counter()


def _train(parts: RunParts, hooks: Hooks, *, stream: TextIO | None, interactive: bool | None) -> Run:
    """The epochs, the final evaluation on best.ckpt, then the result files (rank 0)."""
    ts = parts.state
    prev_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(parts.cfg.runtime.deterministic, warn_only=True)
    try:
        with (
            Progress(
                parts.planned_epochs(), parts.steps_per_epoch, stream=stream, interactive=interactive, quiet=parts.quiet
            ) as progress,
            GracefulInterrupt(progress.message) as interrupt,
        ):
            s = Session(
                parts=parts,
                hooks=hooks,
                progress=progress,
                interrupt=interrupt,
                clock=_clock,
                t_train=_clock() - ts.train_seconds,
                step_model=parts.train_model,
                train_split=parts.data.train,
                val_model=parts.model,
                val_split=parts.data.val,
                feed=parts.normalize,
                saved={"epoch": ts.epoch, "step": ts.epoch_state.step if ts.epoch_state is not None else 0},
            )
            announce(s)
            _run_epochs(s)
            train_seconds = s.elapsed()
            if not parts.is_main:
                return Run(parts.folder, parts.cfg, ts.rows, {}, model=parts.model)
            final = final_evaluation(  # from best.ckpt, on the test split only
                parts.model, ts.ema, parts.folder, parts.data, parts.cfg, parts.normalize
            )
    finally:
        torch.use_deterministic_algorithms(prev_deterministic)
        if parts.writer is not None:
            parts.writer.close()
    out = stream or sys.stdout
    return finish_run(parts, hooks, final, train_seconds=train_seconds, stopped_early=s.stopped_early, out=out)


def _run_epochs(s: Session) -> None:
    """Epochs from where the run stands while the (possibly re-planned) number of epochs allows."""
    p, ts = s.parts, s.parts.state
    epoch = ts.epoch + 1
    while epoch <= p.planned_epochs() and not ts.stopper.should_stop:
        _train_epoch(s, epoch)
        if ts.stopper.should_stop and epoch < p.planned_epochs():
            s.stopped_early = True
            s.progress.message(
                f"cnnkit: early stopping: {p.cfg.train.monitor} has not improved for {ts.stopper.patience} epochs "
                f"(best {ts.stopper.best:.4g} at epoch {ts.stopper.best_epoch})"
            )
        epoch += 1


def _train_epoch(s: Session, epoch: int) -> None:
    """One epoch: train, evaluate, record the row, save the checkpoints."""
    p, ts = s.parts, s.parts.state
    s.progress.start_epoch(epoch)
    t0 = s.clock()
    if ts.epoch_state is None:  # a new epoch (a resumed one continues its order)
        ts.epoch_state = EpochState.start(len(p.data.train), ts.generator, sampler=p.epoch_sampler)
        ts.epoch_lr = ts.optimizer.param_groups[0]["lr"]
    lr = ts.epoch_lr
    if p.cfg.model.finetune:
        transfer.start_epoch(p.model, p.cfg.model, epoch - 1, p.planned_epochs())  # gradual unfreezing
    tr = _fit_epoch(s, epoch)
    ts.skipped_steps += tr["skipped_steps"]
    ts.images_seen += tr["images"]
    ts.epoch_state, ts.epoch_lr = None, None
    if ts.budget is not None:  # re-plan before deciding whether this epoch was the last
        replan(s, ts.budget.end_epoch, min(epoch * p.steps_per_epoch, ts.budget.total), s.elapsed())
    if ts.lookahead is not None and epoch >= p.planned_epochs():
        ts.lookahead.finish(p.model)  # the last epoch ends on the averaged weights
    record_epoch(s, epoch, epoch_row(s, epoch, tr, lr, t0))


def _fit_epoch(s: Session, epoch: int) -> dict:
    """loop.train_one_epoch with this run's parts; a non-finite loss becomes an error that says where and what to do."""
    p, ts, cfg = s.parts, s.parts.state, s.parts.cfg
    size = p.resize.size(epoch, p.planned_epochs()) if p.resize is not None else None
    try:
        return train_one_epoch(
            s.step_model,
            s.train_split,
            optimizer=ts.optimizer,
            scheduler=None if p.per_epoch_schedule else ts.scheduler,
            normalize=s.feed,
            batch_size=cfg.train.batch_size,
            generator=ts.generator,
            augment=p.augment,
            loss=LossSpec(p.loss_fn, cfg.optim.label_smoothing, cfg.optim.l1, p.l1_params),
            amp=PrecisionSpec(cfg.runtime.precision, ts.scaler),
            shard=Sharding(p.rank, p.world_size),
            policy=StepPolicy(cfg.optim.grad_clip, cfg.train.on_nan),
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
        raise nonfinite_error(e, s, epoch) from None
