"""`train(config) -> Run`: build data and model, fit, evaluate, and write the run folder.

last.ckpt holds the model (self-describing, like best.ckpt) plus `train_state`: optimiser,
scheduler, scaler, EMA, epoch/step, every RNG state, the epoch's data order and position,
the metric rows so far and the early-stopping record. `train(resume=run_dir)` continues from
it and ends with the same metrics and weights as an uninterrupted run (same seed, CPU).

Class imbalance: `optim.class_weights` (balanced | sqrt) builds a weighted loss (training/losses.py)
and `data.balance: sampler` draws each epoch's order class-balanced (stored like any order, so
resume stays exact). Multi-label data (manifest rows with several labels) trains with BCE,
reports exact match as accuracy and per-class AP / mean AP at the end; its checkpoints say
`task: multi_label`.

Hooks for other areas (keyword arguments of `train`): `loss_fn` (replaces the configured loss),
`batch_transform` (mixup / cutmix), `param_groups` (a function model -> groups with
"lr_scale", for discriminative rates), `on_step(epoch, step, loss)` and `on_end(run)`
(an HTML report, say).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

import torch

from cnnkit.checkpoint import make_checkpoint, unwrap
from cnnkit.config import AugmentConfig, Config, load_config, save_config
from cnnkit.data import build_dataset
from cnnkit.data.augment import BatchAugment, Mixer
from cnnkit.data.presets import apply_preset
from cnnkit.data.preprocess import Normalize, num_batches
from cnnkit.data.stream import is_streamed
from cnnkit.data.types import Dataset, Split
from cnnkit.errors import CheckpointError, CnnkitError, ConfigError
from cnnkit.evaluate.caveats import result_text
from cnnkit.models import model_info, transfer
from cnnkit.rundir import atomic_write_text, create_run_dir
from cnnkit.training import auto, distributed, head_only, resume_check
from cnnkit.training.batching import clamp_batch_size
from cnnkit.training.compile import maybe_compile
from cnnkit.training.data_warnings import data_warnings
from cnnkit.training.budget import TimeBudget
from cnnkit.training.device import resolve_device, resolve_precision, seed_everything
from cnnkit.training.early_stopping import MONITORS, EarlyStopping
from cnnkit.training.ema import EMA, Lookahead
from cnnkit.training.interrupt import GracefulInterrupt, TrainingInterrupted
from cnnkit.training.loop import BatchTransform, EpochState, LossFn, NonFiniteLossError, evaluate, train_one_epoch
from cnnkit.training.losses import build_loss
from cnnkit.training.optim import build_optimizer, build_scheduler, is_per_epoch, l1_parameters
from cnnkit.training.progress import Progress
from cnnkit.training.progressive import Resize, check_resizable
from cnnkit.training.recipes import apply_recipe
from cnnkit.training.rng import rng_state, set_rng_state
from cnnkit.training.run_files import METRIC_COLUMNS, nan_message, save, tensorboard, warn, write_metrics, writing
from cnnkit.training.results import class_balance, final_evaluation, headline, write_results, write_skipped_csv
from cnnkit.training.threads import follow_load
from cnnkit.training.tta import TTA_MODES

StepHook = Callable[[int, int, float], None]  # (epoch, step within the epoch, loss)


@dataclass
class Run:
    """A finished run: its folder, resolved config, per-epoch metrics and summary."""

    dir: Path
    config: Config
    metrics: list[dict]
    summary: dict
    model: torch.nn.Module | None = dataclasses.field(default=None, repr=False)  # rank 0: best weights; other ranks: last

    @property
    def best_checkpoint(self) -> Path:
        return self.dir / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.dir / "last.ckpt"

    def load(self, device: str = "cpu"):
        from cnnkit.inference import load

        return load(self.best_checkpoint, device=device)


def auto_model(channels: int, size: int) -> str:
    """model.name auto: the fast family up to 64 px (fastnet_t for one channel, fastnet_s for
    colour), ResNet-18 for larger images."""
    if size <= 64:
        return "fastnet_t" if channels == 1 else "fastnet_s"
    return "resnet18"


def resolve_auto_model(cfg: Config, data: Dataset) -> Config:
    """`cfg` with model.name auto made concrete for `data` (recorded so the run reproduces)."""
    if cfg.model.name != "auto":
        return cfg
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=auto_model(data.channels, max(data.image_size))))


def _model_kwargs(cfg: Config, data: Dataset) -> dict:
    kwargs = dict(cfg.model.kwargs)
    for reserved in ("num_classes", "in_chans"):
        if reserved in kwargs:
            raise ConfigError(f"model.kwargs.{reserved} is set from the dataset; remove it")
    params = inspect.signature(model_info(cfg.model.name).builder).parameters
    if "image_size" in params and "image_size" not in kwargs:
        kwargs["image_size"] = data.image_size[0]
    return kwargs


def _with_preset(aug: AugmentConfig, dataset: str, image_size: int) -> AugmentConfig:
    """The preset's augmentation, with any key the config sets to a non-default value kept.
    The resolved config records the expanded keys (preset: null), so the run reproduces."""
    defaults = AugmentConfig()
    explicit = {f.name: getattr(aug, f.name) for f in dataclasses.fields(aug) if f.name != "preset" and getattr(aug, f.name) != getattr(defaults, f.name)}
    return dataclasses.replace(apply_preset(aug, aug.preset, dataset=dataset, image_size=image_size), **explicit, preset=None)


def _finetune_groups(model: torch.nn.Module, cfg: Config) -> list[dict]:
    """Transfer learning's groups (head / backbone, discriminative rates) as lr_scale groups."""
    groups = transfer.param_groups_for(model, cfg.model, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    return [{**{k: v for k, v in g.items() if k != "lr"}, "lr_scale": g["lr"] / cfg.optim.lr} for g in groups]


def _resolve(cfg: Config, data: Dataset, run_dir: Path) -> Config:
    """The config with what was chosen automatically written in."""
    resolved_data = cfg.data
    if cfg.data.dataset == "folder":
        resolved_data = dataclasses.replace(cfg.data, channels=data.channels, image_size=data.image_size[0])
    return dataclasses.replace(cfg, data=resolved_data, run=dataclasses.replace(cfg.run, name=run_dir.name))


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


def _write_run_start(run_dir: Path, cfg: Config, env: dict, data: Dataset) -> None:
    """A new run folder's first files: config.yaml (resolved, so the run reproduces), environment.json,
    plots/ and skipped.csv (the files the dataset could not use)."""
    with writing(run_dir / "config.yaml", started=False):
        save_config(cfg, run_dir / "config.yaml")
    with writing(run_dir / "environment.json", started=False):
        atomic_write_text(run_dir / "environment.json", json.dumps(env, indent=2))
    with writing(run_dir / "plots", started=False):
        (run_dir / "plots").mkdir(exist_ok=True)
    if data.skipped:
        with writing(run_dir / "skipped.csv", started=False):
            write_skipped_csv(run_dir, data.skipped)


def _check(cfg: Config, world_size: int) -> None:
    tc = cfg.train
    if tc.epochs < 1 or tc.batch_size < 1:
        raise ConfigError(f"train.epochs and train.batch_size must be at least 1 (got {tc.epochs}, {tc.batch_size})")
    if tc.on_nan not in ("stop", "skip"):
        raise ConfigError(f"train.on_nan: {tc.on_nan!r} is not one of stop, skip")
    if tc.tta not in TTA_MODES:
        raise ConfigError(f"train.tta: {tc.tta!r} is not one of {', '.join(TTA_MODES)}")
    if tc.monitor not in MONITORS:
        raise ConfigError(f"train.monitor: {tc.monitor!r} is not one of {', '.join(MONITORS)}")
    if tc.checkpoint_every < 0:
        raise ConfigError(f"train.checkpoint_every must be >= 0, got {tc.checkpoint_every}")
    if not (tc.ema_decay == 0.0 or 0.0 < tc.ema_decay < 1.0):
        raise ConfigError(f"train.ema_decay must be 0 (off) or in (0, 1), got {tc.ema_decay}")
    if tc.time_budget < 0:
        raise ConfigError(f"train.time_budget must be >= 0 seconds (0: off), got {tc.time_budget}")
    if tc.batch_size % world_size:
        raise ConfigError(f"train.batch_size {tc.batch_size} (the global batch) must be divisible by the {world_size} processes")


def _init_from_data(model: torch.nn.Module, train: Split, normalize: Normalize, seed: int, pixels: int = 5000 * 32 * 32) -> None:
    """Data-dependent initialisation (fastnet's whitening stem) from normalised training images
    (5,000 at 32 px, fewer for larger ones: the patches stay ~250 MB), drawn with the run's
    seed so every process and every rerun agrees."""
    init = getattr(model, "init_from_data", None)
    if init is None:
        return
    h, w = train.images.shape[-2:]
    n = max(64, pixels // (h * w))
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    init(normalize(train.images[idx]))


def _epochs(start: int, planned: Callable[[], int]):
    """start, start + 1, ... while the (possibly re-planned) number of epochs allows."""
    epoch = start
    while epoch <= planned():
        yield epoch
        epoch += 1


def _epoch_sampler(cfg: Config, data: Dataset):
    """data.balance: sampler: each epoch's order drawn (with replacement) so every class is equally likely."""
    if cfg.data.balance != "sampler":
        return None
    from cnnkit.data.balance import balanced_indices

    labels, n = data.train.labels, len(data.train)
    return lambda g: balanced_indices(labels, n, g)


def _restore(ckpt: dict, path: Path, *, model, optimizer, scheduler, scaler, ema, lookahead, stopper, budget, generator, rank: int, world_size: int):
    """Load last.ckpt's training state into this run's fresh objects. Returns where to go on:
    (metric rows, first epoch, the interrupted epoch's state or None, its starting lr, skipped steps, seconds trained)."""
    st = ckpt["train_state"]
    try:
        unwrap(model).load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(st["optimizer"])
        scheduler.load_state_dict(st["scheduler"])
        if st["scaler"]:
            scaler.load_state_dict(st["scaler"])
        if ema is not None and st["ema"] is not None:
            ema.load_state_dict(st["ema"])
        if lookahead is not None:
            lookahead.load_state_dict(st["lookahead"])
        stopper.load_state_dict(st["early_stopping"])
        if budget is not None and st.get("budget"):
            budget.load_state_dict(st["budget"])
            if lookahead is not None:
                lookahead.total = budget.total
        epoch_state = None
        if st["epoch_state"] is not None:  # with several processes, each resumes its own running sums
            epoch_state = EpochState.from_state_dict(distributed.epoch_state_for_rank(st["epoch_state"], st.get("epoch_sums"), rank, world_size))
        set_rng_state(st["rng"], generator)
        return list(st["rows"]), st["epoch"] + 1, epoch_state, st.get("epoch_lr"), st["skipped_steps"], st["train_seconds"]
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: its training state does not fit this run's config ({type(e).__name__}: {str(e)[:200]})") from e


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
) -> Run:
    """Train a model as `config` says and write a complete run folder. Returns the Run.

    resume: a run folder to continue from its last.ckpt (its config.yaml is used when
    `config` is None). run_dir: an existing empty folder to write to (the multi-process
    launcher's). Raises TrainingInterrupted (exit_code 130/143) after Ctrl-C / SIGTERM.
    """
    if resume is not None:
        resume = Path(resume)
        cfg = config or resume_config(resume)
    else:
        cfg = config or Config()
    if resume is None:  # a resumed run continues exactly as configured (its config.yaml holds the expanded recipe)
        note = None if quiet or distributed.world()[0] != 0 else lambda text: print(text, file=stream or sys.stdout, flush=True)
        cfg = apply_recipe(auto.plan(cfg, note))  # photo defaults (training/auto.py), then the tuned settings under the keys the config sets
    tc = cfg.train
    _check(cfg, distributed.world()[1])
    prev_threads = torch.get_num_threads()
    if tc.num_threads:
        torch.set_num_threads(tc.num_threads)
    else:  # auto: the cores other programs leave free, re-checked while training (training/threads.py)
        on_step = follow_load(on_step, tc.device, None if quiet else (stream or sys.stderr))
    try:
        return _train(cfg, tc, resume, run_dir, stream, interactive, quiet, loss_fn, batch_transform, param_groups, on_step, on_end)
    finally:
        torch.set_num_threads(prev_threads)  # a library call leaves the process as it found it


def _train(cfg, tc, resume, run_dir, stream, interactive, quiet, loss_fn, batch_transform, param_groups, on_step, on_end) -> Run:
    rank, world_size, local_rank = distributed.world()
    device = distributed.device_for_rank(resolve_device(tc.device), local_rank)
    if tc.precision == "auto":  # made concrete, so config.yaml records what ran
        tc = dataclasses.replace(tc, precision=resolve_precision(tc.precision, device))
        cfg = dataclasses.replace(cfg, train=tc)
    if world_size > 1:
        distributed.init(device)
    is_main = rank == 0
    quiet = quiet or not is_main

    ckpt = None
    if resume is not None:
        ckpt = resume_check.load_last(resume, tc.checkpoint_every)  # stray temporary files removed; no last.ckpt yet: start again
        if "train_state" not in ckpt:
            raise CheckpointError(f"{resume / 'last.ckpt'}: holds no training state to resume from (written by an older cnnkit?)")
        if ckpt["train_state"].get("finished"):
            raise CnnkitError(f"{resume}: this run already finished; start a new one with: cnnkit train --config {resume / 'config.yaml'}")

    data = build_dataset(cfg.data, seed=tc.seed)
    data_fingerprint = resume_check.check(ckpt, cfg, data, resume, quiet=quiet)  # on resume: refuses a changed config or dataset
    if cfg.augment.preset:
        cfg = dataclasses.replace(cfg, augment=_with_preset(cfg.augment, cfg.data.dataset, data.image_size[0]))
    if len(data.train) < tc.batch_size:  # a small dataset: one step per epoch, recorded in config.yaml
        tc = dataclasses.replace(tc, batch_size=clamp_batch_size(tc.batch_size, len(data.train), world_size, quiet=quiet))
        cfg = dataclasses.replace(cfg, train=tc)

    generator = seed_everything(tc.seed)
    cfg = resolve_auto_model(cfg, data)
    mcfg = dataclasses.replace(cfg.model, kwargs=_model_kwargs(cfg, data))
    model = transfer.build_model(mcfg, num_classes=data.num_classes, in_chans=data.channels, image_size=data.image_size[0])
    prep = transfer.preprocessing(model, data.channels)  # pretrained weights bring their own normalisation
    mean, std = (tuple(prep["mean"]), tuple(prep["std"])) if prep else (data.mean, data.std)
    if param_groups is None and cfg.model.finetune:
        param_groups = lambda m: _finetune_groups(m, cfg)  # noqa: E731
    if cfg.data.balance == "sampler" and cfg.optim.class_weights != "none" and not data.multi_label:
        raise ConfigError(
            "data.balance: sampler already shows every class equally often; optim.class_weights on top would over-correct "
            "(rare classes weighted ~ratio^2). Use one of them"
        )
    if loss_fn is None:  # optim.class_weights: a weighted loss (None: the loop's default, CE or multi-label BCE)
        loss_fn = build_loss(cfg.optim.class_weights, data.train.labels, data.num_classes, label_smoothing=cfg.optim.label_smoothing)
    epoch_sampler = _epoch_sampler(cfg, data)
    if batch_transform is None:
        mixer = Mixer.from_config(cfg.augment, data.num_classes)
        batch_transform = mixer if mixer.active else None
    model.to(device)
    if tc.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim, param_groups(model) if param_groups is not None else None)
    l1_params = l1_parameters(model, cfg.optim.l1_params) if cfg.optim.l1 else None
    steps_per_epoch = num_batches(len(data.train), tc.batch_size, drop_last=True)
    resize = Resize(data.image_size, tc.progressive_resize, tc.progressive_end) if tc.progressive_resize else None
    if resize is not None:
        check_resizable(model, data.channels, resize.size(1, tc.epochs), cfg.model.name, device)
    budget = TimeBudget(tc.time_budget, steps_per_epoch, tc.epochs * steps_per_epoch, work=resize.work if resize else None) if tc.time_budget else None
    planned_steps = (lambda: budget.total) if budget is not None else tc.epochs * steps_per_epoch  # noqa: E731

    def planned_epochs() -> int:
        return budget.epochs if budget is not None else tc.epochs

    scheduler = build_scheduler(optimizer, cfg.schedule, planned_steps, steps_per_epoch, mode=MONITORS[tc.monitor])
    per_epoch_schedule = is_per_epoch(scheduler)
    scaler = torch.amp.GradScaler(device.type, enabled=tc.precision == "fp16" and device.type == "cuda")
    ema = EMA(model, tc.ema_decay) if tc.ema_decay else None
    lookahead = Lookahead(model, tc.epochs * steps_per_epoch) if tc.lookahead else None
    stopper = EarlyStopping(tc.monitor, tc.early_stopping, tc.min_delta)
    normalize = Normalize(mean, std, device, channels_last=tc.channels_last)
    augment = BatchAugment.from_config(cfg.augment)
    if ckpt is None and not cfg.model.weights and not cfg.model.pretrained:
        _init_from_data(unwrap(model), data.train, normalize, tc.seed)  # e.g. fastnet's whitening stem

    rows: list[dict] = []
    start_epoch, epoch_state, skipped, elapsed, epoch_lr = 1, None, 0, 0.0, None
    if ckpt is not None:
        rows, start_epoch, epoch_state, epoch_lr, skipped, elapsed = _restore(
            ckpt, resume / "last.ckpt", model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler, ema=ema, lookahead=lookahead,
            stopper=stopper, budget=budget, generator=generator, rank=rank, world_size=world_size,
        )

    train_model = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)

    out = stream or sys.stdout
    train_model = maybe_compile(train_model, tc.compile, lambda text: print(text, file=sys.stderr, flush=True))

    # the run folder: a new one, the launcher's, or the resumed one (rank 0 names it for the others)
    if resume is not None:
        run_dir = resume
    elif run_dir is None and is_main:
        run_dir = create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=data.name, model=cfg.model.name)  # RunDirError if it cannot
    if world_size > 1 and resume is None:
        run_dir = Path(distributed.broadcast_object(str(run_dir) if run_dir is not None else None))
    run_dir = Path(run_dir)
    if resume is None:
        cfg = _resolve(cfg, data, run_dir)
    env = _environment(device)
    if is_main and resume is None:
        _write_run_start(run_dir, cfg, env, data)
    writer = tensorboard(run_dir) if tc.tensorboard and is_main else None

    def model_checkpoint(epoch: int, metrics: dict) -> dict:
        ck = make_checkpoint(
            model, class_names=data.class_names, channels=data.channels, size=data.image_size, mean=mean, std=std,
            config=cfg.to_dict(), dataset=data.name, epoch=epoch, metrics=metrics,
        )
        if prep:
            ck["weights"] = {"source": str(prep.get("source", "")), "mean": list(mean), "std": list(std)}
        if data.multi_label:  # sigmoid outputs, several labels per image (predict / evaluate read this)
            ck["task"] = "multi_label"
        if ema is not None:
            ck["ema_state_dict"] = ema.state_dict()["state_dict"]
        return ck

    def train_state(epochs_done: int, state: EpochState | None, lr_at_start: float | None, seconds: float) -> dict:
        return {
            "epoch": epochs_done, "epoch_state": state.state_dict() if state is not None else None, "epoch_lr": lr_at_start,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "lookahead": lookahead.state_dict() if lookahead is not None else None, "early_stopping": stopper.state_dict(), "rows": [dict(r) for r in rows],
            "budget": budget.state_dict() if budget is not None else None, "rng": rng_state(generator), "skipped_steps": skipped, "train_seconds": seconds, "finished": False,
            "dataset": data_fingerprint,
        }

    saved = {"epoch": start_epoch - 1, "step": epoch_state.step if epoch_state is not None else 0}

    def save_last(epochs_done: int, state: EpochState | None, lr_at_start: float | None, seconds: float, ck: dict | None = None) -> None:
        # mid-epoch with several processes: every rank's running sums (a collective, so every rank calls save_last)
        sums = distributed.gather_epoch_sums(state, device) if world_size > 1 and state is not None else None
        if is_main:
            ck = ck if ck is not None else model_checkpoint(epochs_done, {})
            save({**ck, "train_state": {**train_state(epochs_done, state, lr_at_start, seconds), "epoch_sums": sums}}, run_dir / "last.ckpt")
        saved.update(epoch=epochs_done, step=state.step if state is not None else 0)

    prev_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(tc.deterministic, warn_only=True)
    t_train = time.perf_counter() - elapsed
    stopped_early = False
    epoch = start_epoch
    try:
        with Progress(planned_epochs(), steps_per_epoch, stream=stream, interactive=interactive, quiet=quiet) as progress, GracefulInterrupt(progress.message) as interrupt:
            verb, at = ("resuming", f" from epoch {start_epoch}" + (f", step {epoch_state.step + 1}" if epoch_state is not None else "")) if ckpt is not None else ("training", "")
            if ckpt is not None and (start_epoch > planned_epochs() or stopper.should_stop):  # the end-of-run files had failed to be written
                verb, at = "every epoch is done; repeating only the final evaluation of", ""
            progress.message(
                f"cnnkit: {verb} {cfg.model.name} on {data.name} ({len(data.train)} train / {len(data.val)} val"
                f"{f' / {len(data.test)} test' if data.test is not None else ''} images, {data.num_classes} classes) "
                f"on {device}{f' x {world_size} processes' if world_size > 1 else ''}{at}; run folder {run_dir}"
            )
            if is_main:  # even with --quiet (stderr): imbalance and unreadable files, one line each
                for line in data_warnings(cfg, data, run_dir):
                    warn(line)
            if is_streamed(data.train):
                progress.message(f"cnnkit: streaming the images from their files, decoded in {data.train.images.workers} DataLoader workers (data.stream, data.cache_max_gb)")
            # head-only fine-tuning without augmentation: the frozen backbone's features once, the head on them
            step_model, train_split, val_model, val_split, feed = train_model, data.train, model, data.val, normalize
            if ckpt is None and cfg.model.finetune == "fine_tune":  # its first stage: the head alone, on features computed once
                head_only.warm_up_head(model, data.train, data.val, normalize, epochs=cfg.model.head_epochs, lr=cfg.optim.lr * 3, weight_decay=cfg.optim.weight_decay,
                                       batch_size=tc.batch_size, seed=tc.seed, precision=tc.precision, eval_batch_size=tc.eval_batch_size, message=progress.message)
            if world_size == 1 and transfer.use_feature_cache(cfg.model, augmenting=augment.active or batch_transform is not None):
                cached = head_only.prepare(model, data.train, data.val, normalize, batch_size=tc.eval_batch_size, precision=tc.precision, message=progress.message)
                step_model, train_split, val_model, val_split, feed = cached.head, cached.train, cached.head, cached.val, cached.feed
            elif cfg.model.finetune == "head" and cfg.model.cache_features:
                progress.message("cnnkit: head-only training with augmentation passes every image through the backbone each epoch; --augment none computes its features once (seconds on a CPU)")
            skipped_files = len(data.skipped)
            if budget is not None:
                progress.message(f"cnnkit: time budget {tc.time_budget:.0f} s: the number of steps is planned from the measured speed (train.epochs is not used)")

            def replan(update) -> None:  # a time budget's new plan, the same on every process
                update()
                if world_size > 1:
                    budget.total = int(distributed.broadcast_object(budget.total))
                if lookahead is not None:
                    lookahead.total = budget.total
                progress.epochs = planned_epochs()

            if resize is not None and step_model is not train_model:
                progress.message("cnnkit: progressive resizing does not apply to head-only training on cached features; every epoch uses the full size")
                resize = None
                if budget is not None:
                    budget.work = lambda epoch, epochs: 1.0
            elif resize is not None:
                h, w = resize.size(1, planned_epochs())
                progress.message(f"cnnkit: progressive resizing: {h}x{w} px in epoch 1, growing to the full {data.image_size[0]}x{data.image_size[1]} "
                                 f"by {tc.progressive_end:.0%} of the epochs (train.progressive_resize)")
            for epoch in _epochs(start_epoch, planned_epochs):
                if stopper.should_stop:
                    break
                progress.start_epoch(epoch)
                size = resize.size(epoch, planned_epochs()) if resize is not None else None
                t0 = time.perf_counter()
                if epoch_state is None:
                    epoch_state = EpochState.start(len(data.train), generator, sampler=epoch_sampler)
                    epoch_lr = optimizer.param_groups[0]["lr"]
                state, lr = epoch_state, epoch_lr

                def step_hook(step: int, steps: int, loss: float, acc: float, images: int) -> None:
                    if budget is not None and not budget.planned and world_size == 1:  # several processes plan at the epoch's end
                        replan(lambda: budget.observe((epoch - 1) * steps_per_epoch + step, time.perf_counter() - t_train))
                    if lookahead is not None:
                        lookahead.update(model)
                    progress.step(step, steps, loss, acc, images)
                    if on_step is not None:
                        on_step(epoch, step, loss)
                    global_step = (epoch - 1) * steps + step
                    if tc.checkpoint_every and global_step % tc.checkpoint_every == 0 and step < steps:
                        save_last(epoch - 1, state, lr, time.perf_counter() - t_train)
                    stop = interrupt.requested
                    if world_size > 1:
                        flag = torch.tensor([1.0 if stop else 0.0], device=device)
                        torch.distributed.all_reduce(flag)
                        stop = float(flag) > 0
                    if stop:
                        save_last(epoch - 1, state, lr, time.perf_counter() - t_train)
                        raise TrainingInterrupted(  # printed once, by whoever catches it (the CLI)
                            f"interrupted at epoch {epoch}, step {step}; resume with: cnnkit train --resume {run_dir}", interrupt.exit_code)

                if cfg.model.finetune:
                    transfer.start_epoch(model, cfg.model, epoch - 1, planned_epochs())  # gradual unfreezing
                try:
                    tr = train_one_epoch(
                        step_model, train_split, optimizer=optimizer, scheduler=None if per_epoch_schedule else scheduler, normalize=feed,
                        batch_size=tc.batch_size, generator=generator, augment=augment, label_smoothing=cfg.optim.label_smoothing,
                        loss_fn=loss_fn, batch_transform=batch_transform, precision=tc.precision, scaler=scaler, grad_clip=cfg.optim.grad_clip,
                        l1=cfg.optim.l1, l1_params=l1_params, on_nan=tc.on_nan, ema=ema, state=state, rank=rank, world_size=world_size,
                        set_train_mode=(lambda: transfer.start_epoch(model, cfg.model, epoch - 1, planned_epochs())) if cfg.model.finetune else None,
                        on_step=step_hook, stop_at=(lambda: budget.steps_in_epoch(epoch)) if budget is not None else None, epoch=epoch,
                        resize_to=size if size != tuple(data.image_size) else None,
                    )
                except NonFiniteLossError as e:
                    last = e.last_finite if e.last_finite is not None else (rows[-1]["train_loss"] if rows else None)
                    raise NonFiniteLossError(
                        nan_message(e, epoch=epoch, steps=steps_per_epoch, global_step=(epoch - 1) * steps_per_epoch + e.step, last_finite=last,
                                     lr=optimizer.param_groups[0]["lr"], precision=tc.precision, run_dir=run_dir, saved_epoch=saved["epoch"], saved_step=saved["step"]),
                        step=e.step, value=e.value, last_finite=last,
                    ) from None
                skipped += tr["skipped_steps"]
                epoch_state = None
                if budget is not None:  # re-plan before deciding whether this epoch was the last
                    replan(lambda: budget.end_epoch(min(epoch * steps_per_epoch, budget.total), time.perf_counter() - t_train))
                if lookahead is not None and epoch >= planned_epochs():
                    lookahead.finish(model)  # the last epoch ends on the averaged weights
                va = evaluate(val_model, val_split, normalize=feed, batch_size=tc.eval_batch_size, precision=tc.precision)
                if is_main and len(data.skipped) > skipped_files:  # streaming finds unreadable files as it reads them
                    skipped_files = len(data.skipped)
                    write_skipped_csv(run_dir, data.skipped)
                if world_size > 1:  # rank 0's numbers decide for everyone (BatchNorm buffers may differ a little)
                    va = distributed.broadcast_object(va)
                row = {
                    "epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"], "val_loss": va["loss"],
                    "val_accuracy": va["accuracy"], "lr": lr, "seconds": time.perf_counter() - t0,
                }
                if "l1" in tr:
                    row["train_l1"] = tr["l1"]
                if ema is not None:
                    ve = evaluate(ema.module, data.val, normalize=normalize, batch_size=tc.eval_batch_size, precision=tc.precision)
                    row.update(val_loss_ema=ve["loss"], val_accuracy_ema=ve["accuracy"])
                rows.append(row)
                if per_epoch_schedule:
                    scheduler.step(row[tc.monitor])
                improved = stopper.update(row[tc.monitor], epoch, tiebreak=row["val_loss"] if tc.monitor == "val_accuracy" else None)
                progress.end_epoch(row)  # shown before the files are written: a full disk does not hide the numbers
                if is_main:
                    write_metrics(rows, run_dir / "metrics.csv")
                    if writer is not None:
                        for k, v in row.items():
                            if k != "epoch":
                                writer.add_scalar(k, v, epoch)
                        writer.flush()
                    ck = model_checkpoint(epoch, {k: row[k] for k in METRIC_COLUMNS[1:]})
                    if improved:  # before last.ckpt: if this save fails, resuming repeats the epoch and writes best.ckpt again
                        save(ck, run_dir / "best.ckpt")
                save_last(epoch, None, None, time.perf_counter() - t_train, ck if is_main else None)
                if stopper.should_stop and epoch < planned_epochs():
                    stopped_early = True
                    progress.message(f"cnnkit: early stopping: {tc.monitor} has not improved for {stopper.patience} epochs (best {stopper.best:.4g} at epoch {stopper.best_epoch})")
            train_seconds = time.perf_counter() - t_train
            if not is_main:
                return Run(run_dir, cfg, rows, {}, model=model)
            split_name, final, final_ema = final_evaluation(model, ema, run_dir, data, cfg, normalize)  # from best.ckpt, on the test split only
    finally:
        torch.use_deterministic_algorithms(prev_deterministic)
        if writer is not None:
            writer.close()

    head = headline(final)
    stopped_early = stopped_early or (stopper.should_stop and len(rows) < planned_epochs())  # also when resumed after it stopped
    steps_run = len(rows) * steps_per_epoch if budget is None else min(len(rows) * steps_per_epoch, budget.total)
    summary = {
        "run": run_dir.name,
        "dataset": data.name,
        "model": cfg.model.name,
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "input": {"channels": data.channels, "size": list(data.image_size), "mean": list(mean), "std": list(std)},
        "split_sizes": {"train": len(data.train), "val": len(data.val), "test": len(data.test) if data.test is not None else 0},
        "task": "multi_label" if data.multi_label else "single_label",
        "class_counts": {"train": data.train.class_counts(data.num_classes)},
        "class_balance": class_balance(cfg, data),
        "skipped_files": len(data.skipped),
        "epochs": planned_epochs(),
        "time_budget": tc.time_budget or None,
        "steps": steps_run,
        "epochs_run": len(rows),
        "stopped_early": stopped_early,
        "train_seconds": round(train_seconds, 2),
        "images_per_second": round((steps_run - skipped) * tc.batch_size / train_seconds, 1),
        "best_epoch": stopper.best_epoch,
        "monitor": tc.monitor,
        "best_val_accuracy": max((r["val_accuracy"] for r in rows), default=float("nan")) if tc.monitor != "val_accuracy" else stopper.best,
        "nonfinite_steps_skipped": skipped,
        "test": head if split_name == "test" else None,
        "val": head if split_name == "val" else None,
        "tta": tc.tta,
        "device": str(device),
        "processes": world_size,
        "compiled": bool(getattr(train_model, "compiled", False)),
        "parameters": sum(p.numel() for p in model.parameters()),
        "cnnkit_version": env["cnnkit"],
    }
    if final_ema is not None:
        summary[f"{split_name}_ema"] = headline(final_ema)
    acc = head["accuracy"]
    what = f"{split_name} mean AP {head['mean_ap']:.4f}, exact match {acc:.2%}" if data.multi_label else f"{split_name} accuracy {acc:.2%}"
    result = result_text(what, stopper.best_epoch, split_name)  # the validation split that chose the epoch is labelled optimistic
    final_line = f"{result}, {train_seconds:.1f}s of training. Run folder: {run_dir}"
    write_results(run_dir, cfg, data, summary, rows, final, split_name, result=result, final_line=final_line, quiet=quiet, out=out)
    run = Run(run_dir, cfg, rows, summary, model=model)
    if on_end is not None:
        on_end(run)
    if not quiet:
        print(final_line, file=out, flush=True)
    return run
