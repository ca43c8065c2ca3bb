"""A run's first lines, and the choices made on seeing them: the banner, data warnings, fine_tune's
head warm-up, head-only training on cached features (the model steps on the head alone), the time
budget and progressive resizing notes. `announce(s)` runs them in that order."""

from __future__ import annotations

from cnnkit.data.stream import FileImages, is_streamed
from cnnkit.models import transfer
from cnnkit.training import head_only
from cnnkit.training.data_warnings import data_warnings
from cnnkit.training.run_files import warn
from cnnkit.training.session import Session


def announce(s: Session) -> None:
    """Print the run's first lines; switch the session to the cached head where that applies."""
    s.progress.message(banner(s))
    _data_notes(s)
    resumed = s.parts.ckpt is not None
    if (
        not resumed and s.parts.cfg.model.finetune == "fine_tune"
    ):  # its first stage: the head alone, on features computed once
        _warm_up_head(s)
    _use_cached_features(s)
    s.skipped_files = len(s.parts.data.skipped)
    _plan_notes(s)


def banner(s: Session) -> str:
    """'cnnkit: training MODEL on DATA (sizes) on DEVICE; run folder ...', or resuming from where."""
    p, ts, data = s.parts, s.parts.state, s.parts.data
    start = ts.epoch + 1
    verb, at = "training", ""
    if p.ckpt is not None:
        step = f", step {ts.epoch_state.step + 1}" if ts.epoch_state is not None else ""
        verb, at = "resuming", f" from epoch {start}{step}"
        if start > p.planned_epochs() or ts.stopper.should_stop:  # the end-of-run files had failed to be written
            verb, at = "every epoch is done; repeating only the final evaluation of", ""
    sizes = f"{len(data.train)} train / {len(data.val)} val" + (
        f" / {len(data.test)} test" if data.test is not None else ""
    )
    processes = f" x {p.world_size} processes" if p.world_size > 1 else ""
    return (
        f"cnnkit: {verb} {p.cfg.model.name} on {data.name} ({sizes} images, {data.num_classes} classes) "
        f"on {p.device}{processes}{at}; run folder {p.run_dir}"
    )


def _data_notes(s: Session) -> None:
    p, data = s.parts, s.parts.data
    if p.is_main:  # even with --quiet (stderr): imbalance and unreadable files, one line each
        for line in data_warnings(p.cfg, data, p.folder):
            warn(line)
    if is_streamed(data.train):
        assert isinstance(data.train.images, FileImages)  # what is_streamed checked
        s.progress.message(
            f"cnnkit: streaming the images from their files, decoded in {data.train.images.workers} DataLoader workers (data.stream, data.cache_max_gb)"
        )


def _warm_up_head(s: Session) -> None:
    """fine_tune's first stage: the head alone for model.head_epochs, on features computed once."""
    p, cfg = s.parts, s.parts.cfg
    head_only.warm_up_head(
        p.model,
        p.data.train,
        p.data.val,
        p.normalize,
        epochs=cfg.model.head_epochs,
        lr=cfg.optim.lr * 3,
        weight_decay=cfg.optim.weight_decay,
        batch_size=cfg.train.batch_size,
        seed=cfg.train.seed,
        precision=cfg.runtime.precision,
        eval_batch_size=cfg.eval.batch_size,
        message=s.progress.message,
    )


def _use_cached_features(s: Session) -> None:
    """Head-only training without augmentation: the frozen backbone's features once, then the head steps on them."""
    p, cfg = s.parts, s.parts.cfg
    augmenting = p.augment.active or p.batch_transform is not None or s.hooks.perturb_batch is not None
    if p.world_size == 1 and transfer.use_feature_cache(cfg.model, augmenting=augmenting):
        cached = head_only.prepare(
            p.model,
            p.data.train,
            p.data.val,
            p.normalize,
            batch_size=cfg.eval.batch_size,
            precision=cfg.runtime.precision,
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


def _plan_notes(s: Session) -> None:
    """The time budget; progressive resizing (off on cached features, where every epoch has the full size)."""
    p, ts, tc = s.parts, s.parts.state, s.parts.cfg.train
    if ts.budget is not None and tc.time_budget:
        s.progress.message(
            f"cnnkit: time budget {tc.time_budget:.0f} s: the number of steps is planned from the measured speed (train.epochs is not used)"
        )
    elif ts.budget is not None:
        s.progress.message(
            f"cnnkit: time limit {tc.time_limit:.0f} s: {tc.epochs} epochs, or fewer steps if the measured speed says they would not fit "
            "(train.time_limit; 0 turns it off)"
        )
    if p.resize is not None and s.step_model is not p.train_model:
        s.progress.message(
            "cnnkit: progressive resizing does not apply to head-only training on cached features; every epoch uses the full size"
        )
        p.resize = None
        if ts.budget is not None:
            ts.budget.work = flat_work
    elif p.resize is not None:
        h, w = p.resize.size(1, p.planned_epochs())
        full = p.data.image_size
        s.progress.message(
            f"cnnkit: progressive resizing: {h}x{w} px in epoch 1, growing to the full {full[0]}x{full[1]} "
            f"by {tc.progressive_end:.0%} of the epochs (train.progressive_resize)"
        )


def flat_work(epoch: int, epochs: int) -> float:
    """Every epoch the same work (the budget's plan without progressive resizing)."""
    return 1.0
