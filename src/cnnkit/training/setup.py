"""`setup_run(cfg, ...) -> RunParts`: everything a run trains with, built in one place.

The order of the steps is part of the run's reproducibility (the global RNG is seeded after
the dataset is built and before the model is), so it is kept as it has always been:
device and precision -> last.ckpt (resume) -> dataset -> resume checks -> the config's
automatic choices -> seed -> model -> loss, optimiser, schedule, EMA, ... -> data-dependent
init -> training state restored -> DDP / compile -> run folder.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from cnnkit.checkpoint import make_checkpoint, unwrap
from cnnkit.config import Config, save_config
from cnnkit.data import build_dataset
from cnnkit.data.augment import BatchAugment, Mixer
from cnnkit.data.preprocess import Normalize, num_batches
from cnnkit.data.types import Dataset, Split
from cnnkit.device import resolve_device, seed_everything
from cnnkit.errors import CheckpointError, CnnkitError, ConfigError
from cnnkit.models import transfer
from cnnkit.rundir import atomic_write_text, create_run_dir
from cnnkit.tasks import task_of
from cnnkit.training import distributed, resume_check
from cnnkit.training.budget import TimeBudget
from cnnkit.training.compile import maybe_compile
from cnnkit.training.early_stopping import MONITORS, EarlyStopping
from cnnkit.training.ema import EMA, Lookahead
from cnnkit.training.hooks import BatchTransform, Hooks, LossFn
from cnnkit.training.losses import build_loss
from cnnkit.training.optim import build_optimizer, build_scheduler, is_per_epoch, l1_parameters
from cnnkit.training.progressive import Resize, check_resizable
from cnnkit.training.resolve import model_kwargs, resolve_config, resolve_precision_of
from cnnkit.training.results import write_skipped_csv
from cnnkit.training.run_files import tensorboard, writing
from cnnkit.training.state import TrainState, restore


@dataclass
class RunParts:
    """What one run trains with: the resolved config, the data, the model and every stateful part
    (in `state`, which is what last.ckpt saves), the run folder and the per-step settings."""

    cfg: Config
    data: Dataset
    device: torch.device
    rank: int
    world_size: int
    quiet: bool
    model: torch.nn.Module  # the plain model (its weights are what checkpoints hold)
    train_model: torch.nn.Module  # what the steps call: the model, DDP-wrapped and/or compiled
    normalize: Normalize
    augment: BatchAugment
    mean: tuple
    std: tuple
    prep: dict | None  # pretrained weights' preprocessing (their mean / std), or None
    loss_fn: LossFn | None
    batch_transform: BatchTransform | None
    l1_params: list | None
    epoch_sampler: Callable | None
    steps_per_epoch: int
    resize: Resize | None
    per_epoch_schedule: bool
    state: TrainState
    ckpt: dict | None  # last.ckpt when resuming
    run_dir: Path | None  # None: built without a folder (lr-find)
    env: dict
    writer: Any = None  # TensorBoard's SummaryWriter, or None

    @property
    def folder(self) -> Path:
        """`run_dir` where the run has a folder (train(); lr-find builds its parts without one)."""
        assert self.run_dir is not None, "this run was set up with folder=False"
        return self.run_dir

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def planned_epochs(self) -> int:
        budget = self.state.budget
        return budget.epochs if budget is not None else self.cfg.train.epochs

    def model_checkpoint(self, epoch: int, metrics: dict) -> dict:
        """best.ckpt's content (last.ckpt adds `train_state`): the weights and what describes them."""
        data = self.data
        ck = make_checkpoint(
            self.model,
            class_names=data.class_names,
            channels=data.channels,
            size=data.image_size,
            mean=self.mean,
            std=self.std,
            config=self.cfg.to_dict(),
            dataset=data.name,
            epoch=epoch,
            metrics=metrics,
            interpolation=self.cfg.data.interpolation,  # the resize predict repeats (data.interpolation)
        )
        if self.prep:
            ck["weights"] = {"source": str(self.prep.get("source", "")), "mean": list(self.mean), "std": list(self.std)}
        task = task_of(data.train).checkpoint_task
        if task:  # e.g. multi_label: sigmoid outputs, several labels per image (predict / evaluate read this)
            ck["task"] = task
        if self.state.ema is not None:
            ck["ema_state_dict"] = self.state.ema.state_dict()["state_dict"]
        return ck


def finetune_groups(model: torch.nn.Module, cfg: Config) -> list[dict]:
    """Transfer learning's groups (head / backbone, discriminative rates) as lr_scale groups."""
    groups = transfer.param_groups_for(model, cfg.model, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    return [{**{k: v for k, v in g.items() if k != "lr"}, "lr_scale": g["lr"] / cfg.optim.lr} for g in groups]


def check_config(cfg: Config, world_size: int) -> None:
    """Values of train.* that no later step checks, as ConfigErrors naming the key."""
    tc = cfg.train
    if tc.epochs < 1 or tc.batch_size < 1:
        raise ConfigError(f"train.epochs and train.batch_size must be at least 1 (got {tc.epochs}, {tc.batch_size})")
    if tc.checkpoint_every < 0:
        raise ConfigError(f"train.checkpoint_every must be >= 0, got {tc.checkpoint_every}")
    if not (tc.ema_decay == 0.0 or 0.0 < tc.ema_decay < 1.0):
        raise ConfigError(f"train.ema_decay must be 0 (off) or in (0, 1), got {tc.ema_decay}")
    if tc.time_budget < 0:
        raise ConfigError(f"train.time_budget must be >= 0 seconds (0: off), got {tc.time_budget}")
    if tc.time_budget and tc.time_limit:
        raise ConfigError(
            f"train.time_budget ({tc.time_budget:g} s) and train.time_limit ({tc.time_limit:g} s) are both set: "
            "the budget fills its time whatever train.epochs says, the limit keeps train.epochs and only shortens them; set one"
        )
    if tc.batch_size % world_size:
        raise ConfigError(
            f"train.batch_size {tc.batch_size} (the global batch) must be divisible by the {world_size} processes"
        )


def init_from_data(
    model: torch.nn.Module, train: Split, normalize: Normalize, seed: int, pixels: int = 5000 * 32 * 32
) -> None:
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


def epoch_sampler(cfg: Config, data: Dataset):
    """data.balance: sampler: each epoch's order drawn (with replacement) so every class is equally likely."""
    if cfg.data.balance != "sampler":
        return None
    from cnnkit.data.balance import balanced_indices

    return partial(balanced_indices, data.train.labels, len(data.train))  # sampler(generator) -> an order


def environment(device: torch.device) -> dict:
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


def write_run_start(run_dir: Path, cfg: Config, env: dict, data: Dataset) -> None:
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


def _load_resume(resume: Path | None, checkpoint_every: int) -> dict | None:
    if resume is None:
        return None
    ckpt = resume_check.load_last(
        resume, checkpoint_every
    )  # stray temporary files removed; no last.ckpt yet: start again
    if "train_state" not in ckpt:
        raise CheckpointError(
            f"{resume / 'last.ckpt'}: holds no training state to resume from (written by an older cnnkit?)"
        )
    if ckpt["train_state"].get("finished"):
        raise CnnkitError(
            f"{resume}: this run already finished; start a new one with: cnnkit train --config {resume / 'config.yaml'}"
        )
    return ckpt


def _default_hooks(cfg: Config, data: Dataset, hooks: Hooks) -> Hooks:
    """The hooks with the config's defaults filled in: fine-tuning's groups, the weighted loss, mixup / cutmix."""
    own = task_of(data.train).setup_hooks(cfg, data, hooks)  # e.g. segmentation's checks and joint augmentation
    if own is not None:
        return own
    param_groups, loss_fn, batch_transform = hooks.param_groups, hooks.loss_fn, hooks.batch_transform
    if param_groups is None and cfg.model.finetune:
        param_groups = partial(finetune_groups, cfg=cfg)
    if cfg.data.balance == "sampler" and cfg.optim.class_weights != "none" and not data.multi_label:
        raise ConfigError(
            "data.balance: sampler already shows every class equally often; optim.class_weights on top would over-correct "
            "(rare classes weighted ~ratio^2). Use one of them"
        )
    if loss_fn is None:  # optim.class_weights: a weighted loss (None: the loop's default, CE or multi-label BCE)
        loss_fn = build_loss(
            cfg.optim.class_weights, data.train.labels, data.num_classes, label_smoothing=cfg.optim.label_smoothing
        )
    if batch_transform is None:  # mixup / cutmix from the config
        mixer = Mixer.from_config(cfg.augment, data.num_classes)
        batch_transform = mixer if mixer.active else None
    return dataclasses.replace(hooks, param_groups=param_groups, loss_fn=loss_fn, batch_transform=batch_transform)


def _run_folder(
    cfg: Config, data: Dataset, resume: Path | None, run_dir: Path | None, rank: int, world_size: int
) -> Path:
    """A new run folder, the launcher's, or the resumed one (rank 0 names it for the others)."""
    if resume is not None:
        return resume
    if run_dir is None and rank == 0:
        run_dir = create_run_dir(
            cfg.run.runs_dir, cfg.run.name, dataset=data.name, model=cfg.model.name
        )  # RunDirError if it cannot
    if world_size > 1:
        run_dir = Path(distributed.broadcast_object(str(run_dir) if run_dir is not None else None))
    assert run_dir is not None  # rank 0 created it (or was given it) and broadcast it
    return Path(run_dir)


def setup_run(
    cfg: Config,
    *,
    resume: Path | None = None,
    run_dir: Path | None = None,
    quiet: bool = False,
    hooks: Hooks | None = None,
    folder: bool = True,
) -> tuple[RunParts, Hooks]:
    """Build a run from a checked config (recipes applied): returns its parts and the hooks with the
    config's defaults filled in. `resume`: a run folder whose last.ckpt is restored into the parts.
    `folder=False` (lr-find): no run folder is created or written (parts.run_dir is None)."""
    rank, world_size, local_rank = distributed.world()
    device = distributed.device_for_rank(resolve_device(cfg.runtime.device), local_rank)
    cfg = resolve_precision_of(cfg, device)  # concrete before the resume check compares configs
    if world_size > 1:
        distributed.init(device)
    quiet = quiet or rank != 0
    ckpt = _load_resume(resume, cfg.train.checkpoint_every)
    data = build_dataset(cfg.data, seed=cfg.train.seed)
    fingerprint = resume_check.check(
        ckpt, cfg, data, resume, quiet=quiet
    )  # on resume: refuses a changed config or data
    cfg, notes = resolve_config(cfg, data, device, world_size=world_size, new_run=resume is None)
    for note in notes if not quiet else []:
        print(note, file=sys.stderr, flush=True)
    tc = cfg.train
    generator = seed_everything(tc.seed)
    model, prep = _build_model(cfg, data, device)
    mean, std = (tuple(prep["mean"]), tuple(prep["std"])) if prep else (data.mean, data.std)
    hooks = _default_hooks(cfg, data, hooks or Hooks())
    state, resize, steps_per_epoch = _train_state(cfg, data, model, device, generator, hooks)
    normalize = Normalize(mean, std, device, channels_last=cfg.runtime.channels_last)
    if ckpt is None and not cfg.model.weights and not cfg.model.pretrained:
        init_from_data(unwrap(model), data.train, normalize, tc.seed)  # e.g. fastnet's whitening stem
    state.dataset = fingerprint
    if ckpt is not None:
        restore(state, model, ckpt, resume / "last.ckpt", rank=rank, world_size=world_size)
    train_model = _wrap(model, cfg.runtime.compile, device, local_rank, world_size)
    folder_path, env, writer = None, environment(device), None
    if folder:  # the launcher's `run_dir`, the resumed one, or a new one
        cfg, folder_path = _open_folder(cfg, data, resume, run_dir, rank, world_size, env)
        writer = tensorboard(folder_path) if cfg.run.tensorboard and rank == 0 else None
    # a task whose targets move with their images (segmentation's masks) augments in its own batch_transform
    augment = BatchAugment.from_config(cfg.augment) if task_of(data.train).augments_images else BatchAugment()
    parts = RunParts(
        cfg=cfg, data=data, device=device, rank=rank, world_size=world_size, quiet=quiet, model=model,
        train_model=train_model, normalize=normalize, augment=augment, mean=mean, std=std,
        prep=prep, loss_fn=hooks.loss_fn, batch_transform=hooks.batch_transform,
        l1_params=l1_parameters(model, cfg.optim.l1_params) if cfg.optim.l1 else None,
        epoch_sampler=epoch_sampler(cfg, data), steps_per_epoch=steps_per_epoch, resize=resize,
        per_epoch_schedule=is_per_epoch(state.scheduler), state=state, ckpt=ckpt, run_dir=folder_path, env=env, writer=writer,
    )  # fmt: skip
    return parts, hooks


def _build_model(cfg: Config, data: Dataset, device: torch.device) -> tuple[torch.nn.Module, dict | None]:
    """The model for `data` on `device`, and its pretrained weights' preprocessing (or None)."""
    mcfg = dataclasses.replace(cfg.model, kwargs=model_kwargs(cfg, data))
    model = transfer.build_model(
        mcfg, num_classes=data.num_classes, in_chans=data.channels, image_size=data.image_size[0]
    )
    prep = transfer.preprocessing(model, data.channels)  # pretrained weights bring their own normalisation
    model.to(device)
    if cfg.runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, prep


def _wrap(
    model: torch.nn.Module, compile_mode, device: torch.device, local_rank: int, world_size: int
) -> torch.nn.Module:
    """What the steps call: the model, in DDP with several processes, compiled when asked."""
    train_model = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[local_rank] if device.type == "cuda" else None)
    return maybe_compile(train_model, compile_mode, partial(print, file=sys.stderr, flush=True))


def _open_folder(
    cfg: Config, data: Dataset, resume: Path | None, run_dir: Path | None, rank: int, world_size: int, env: dict
) -> tuple[Config, Path]:
    """The run folder; a new run's config gets its name and its first files are written."""
    run_dir = _run_folder(cfg, data, resume, run_dir, rank, world_size)
    if resume is None:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, name=run_dir.name))
        if rank == 0:
            write_run_start(run_dir, cfg, env, data)
    return cfg, run_dir


def _train_state(
    cfg: Config, data: Dataset, model: torch.nn.Module, device: torch.device, generator: torch.Generator, hooks: Hooks
):
    """The optimiser, schedule, scaler, EMA, lookahead, early stopping and time budget, in a fresh TrainState;
    with the progressive-resize plan and the steps per epoch."""
    tc = cfg.train
    optimizer = build_optimizer(model, cfg.optim, hooks.param_groups(model) if hooks.param_groups is not None else None)
    steps_per_epoch = num_batches(len(data.train), tc.batch_size, drop_last=True)
    resize = Resize(data.image_size, tc.progressive_resize, tc.progressive_end) if tc.progressive_resize else None
    if resize is not None:
        check_resizable(model, data.channels, resize.size(1, tc.epochs), cfg.model.name, device)
    budget = (
        TimeBudget(
            tc.time_budget or tc.time_limit or 0.0,
            steps_per_epoch,
            tc.epochs * steps_per_epoch,
            work=resize.work if resize else None,
            ceiling=not tc.time_budget,  # a limit: never more than train.epochs
        )
        if tc.time_budget or tc.time_limit
        else None
    )
    planned_steps = budget.planned_steps if budget is not None else tc.epochs * steps_per_epoch
    scheduler = build_scheduler(optimizer, cfg.schedule, planned_steps, steps_per_epoch, mode=MONITORS[tc.monitor])
    state = TrainState(
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler(device.type, enabled=cfg.runtime.precision == "fp16" and device.type == "cuda"),
        stopper=EarlyStopping(tc.monitor, tc.early_stopping, tc.min_delta),
        generator=generator,
        ema=EMA(model, tc.ema_decay) if tc.ema_decay else None,
        lookahead=Lookahead(model, tc.epochs * steps_per_epoch) if tc.lookahead else None,
        budget=budget,
    )
    return state, resize, steps_per_epoch
