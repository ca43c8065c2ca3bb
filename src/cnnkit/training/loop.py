"""`train_one_epoch` and `evaluate`: plain functions with explicit arguments returning metric dicts.

Hook points for other areas, all plain arguments of `train_one_epoch`:
    loss_fn(logits, targets) -> loss       class weights, custom losses (default: cross-entropy
                                           with label smoothing; multi-hot labels: binary
                                           cross-entropy, see training/losses.py); targets may be soft (N, C)
    batch_transform(x, y, generator)       mixup / cutmix on the normalised batch; returns (x, targets)
    perturb_batch(model, normalize, x01, y, generator, epoch) -> x01   adversarial examples on the
                                           augmented [0, 1] pixels, before normalisation (training/hooks.py)
    on_step(step, steps, loss, acc, images) after every optimiser step (progress, checkpoints)
    EpochState.start(n, generator, sampler)  sampler(generator) -> the epoch's order (balanced sampling)

A streamed split (its images a `cnnkit.data.stream.FileImages`, for data too large to decode
once) is read in the same order through DataLoader workers; the rest of the step is the same.

Multi-label splits (labels (N, K) multi-hot) are detected from the labels: their default loss
is BCE on each logit and "accuracy" is the exact match (every label right at sigmoid >= 0.5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize, batches, num_batches
from cnnkit.data.stream import FileImages, is_streamed, load_batches
from cnnkit.data.types import Split
from cnnkit.device import autocast
from cnnkit.errors import CnnkitError
from cnnkit.tasks import Task, task_of
from cnnkit.training.batching import batch_end
from cnnkit.training.hooks import BatchTransform, LossFn, PerturbBatch
from cnnkit.training.progressive import resize_batch

StepCallback = Callable[[int, int, float, float, int], None]  # (step, steps, loss, acc, images)
Sampler = Callable[[torch.Generator], torch.Tensor]  # generator -> an epoch's order (indices into the split)


class NonFiniteLossError(CnnkitError):
    """The loss or the gradient became NaN/Inf (with on_nan="stop")."""

    def __init__(self, message: str, *, step: int, value: float, last_finite: float | None):
        super().__init__(message)
        self.step, self.value, self.last_finite = step, value, last_finite


@dataclass
class EpochState:
    """Where an epoch stands: its data order, steps done and running sums (a step checkpoint resumes from it)."""

    order: torch.Tensor  # the epoch's permutation of the training set
    step: int = 0  # optimiser steps done in this epoch
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    l1_sum: torch.Tensor = field(default_factory=lambda: torch.zeros(()))
    correct: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.long))
    seen: int = 0
    skipped: int = 0  # non-finite steps skipped (on_nan="skip")
    last_finite_loss: float | None = None

    @classmethod
    def start(cls, n: int, generator: torch.Generator, sampler: Sampler | None = None) -> EpochState:
        """A new epoch: a permutation of the n images, or the order `sampler` draws (e.g. balanced,
        with replacement). The order is part of the state, so a resumed epoch replays it exactly."""
        return cls(order=torch.randperm(n, generator=generator) if sampler is None else sampler(generator))

    def state_dict(self) -> dict:
        return {
            "order": self.order.clone(),
            "step": self.step,
            "loss_sum": self.loss_sum.detach().cpu().clone(),
            "l1_sum": self.l1_sum.detach().cpu().clone(),
            "correct": self.correct.detach().cpu().clone(),
            "seen": self.seen,
            "skipped": self.skipped,
            "last_finite_loss": self.last_finite_loss,
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> EpochState:
        return cls(**d)


def l1_penalty(params: list[torch.Tensor], coef: float) -> torch.Tensor:
    """coef * sum(|p|) over `params`."""
    return coef * torch.stack([p.abs().sum() for p in params]).sum()


def _shard(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    per = t.shape[0] // world
    return t[rank * per : (rank + 1) * per]


@dataclass(frozen=True)
class LossSpec:
    """The loss of a step: `fn(logits, targets)` (None: cross-entropy with `label_smoothing`, or BCE for
    multi-hot labels) plus an L1 penalty `l1 * sum(|p|)` over `l1_params` (reported as train_l1)."""

    fn: LossFn | None = None
    label_smoothing: float = 0.0
    l1: float = 0.0
    l1_params: list[torch.Tensor] | None = None


@dataclass(frozen=True)
class PrecisionSpec:
    """Autocast precision (fp32 | bf16 | fp16) and fp16's gradient scaler (an enabled GradScaler, or None)."""

    precision: str = "fp32"
    scaler: torch.amp.GradScaler | None = None

    @property
    def fp16(self) -> bool:
        return self.scaler is not None and self.scaler.is_enabled()


@dataclass(frozen=True)
class Sharding:
    """Several processes: each takes its contiguous share of every global batch; the sums are reduced."""

    rank: int = 0
    world_size: int = 1


@dataclass(frozen=True)
class StepPolicy:
    """Gradient clipping (max total norm; None / 0: off) and what a non-finite loss or gradient does:
    "stop" raises NonFiniteLossError, "skip" drops the step (counted in the result's skipped_steps)."""

    grad_clip: float | None = None
    on_nan: str = "stop"


_FLAT = {  # train_one_epoch's older keyword spelling: name -> (group, field)
    "loss_fn": ("loss", "fn"),
    "label_smoothing": ("loss", "label_smoothing"),
    "l1": ("loss", "l1"),
    "l1_params": ("loss", "l1_params"),
    "precision": ("amp", "precision"),
    "scaler": ("amp", "scaler"),
    "rank": ("shard", "rank"),
    "world_size": ("shard", "world_size"),
    "grad_clip": ("policy", "grad_clip"),
    "on_nan": ("policy", "on_nan"),
}


def _groups(loss, amp, shard, policy, flat: dict) -> tuple[LossSpec, PrecisionSpec, Sharding, StepPolicy]:
    """The grouped arguments, with the older flat keywords (loss_fn=, precision=, rank=, ...) folded in."""
    groups: dict[str, Any] = {
        "loss": loss or LossSpec(),
        "amp": amp or PrecisionSpec(),
        "shard": shard or Sharding(),
        "policy": policy or StepPolicy(),
    }
    given = {"loss": loss, "amp": amp, "shard": shard, "policy": policy}
    for name, value in flat.items():
        if name not in _FLAT:
            raise TypeError(f"train_one_epoch() got an unexpected keyword argument {name!r}")
        group, field_name = _FLAT[name]
        if given[group] is not None:
            raise TypeError(f"train_one_epoch(): give {name} inside {group}=, not both")
        groups[group] = replace(groups[group], **{field_name: value})
    return groups["loss"], groups["amp"], groups["shard"], groups["policy"]


def train_one_epoch(
    model: nn.Module,
    data: Split,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    normalize: Normalize,
    batch_size: int,
    generator: torch.Generator,
    augment: BatchAugment | None = None,
    loss: LossSpec | None = None,
    amp: PrecisionSpec | None = None,
    shard: Sharding | None = None,
    policy: StepPolicy | None = None,
    batch_transform: BatchTransform | None = None,
    perturb_batch: PerturbBatch | None = None,
    ema=None,
    state: EpochState | None = None,
    set_train_mode: Callable[[], None] | None = None,
    on_step: StepCallback | None = None,
    stop_at: Callable[[], int] | None = None,
    epoch: int = 1,
    resize_to: tuple[int, int] | None = None,
    **flat,
) -> dict[str, float]:
    """One pass over `data` (shuffled; the last batch also takes the remainder, see training/batching.py). Returns loss, accuracy, images, seconds.

    Arguments by concern: `loss` (LossSpec), `amp` (PrecisionSpec), `shard` (Sharding), `policy`
    (StepPolicy); the older flat keywords (loss_fn, label_smoothing, l1, l1_params, precision,
    scaler, rank, world_size, grad_clip, on_nan) still work. `epoch` (1-based) drives
    augment.alternate_flip and is passed to perturb_batch; `resize_to` (H, W) resizes the normalised
    batches (progressive resizing). `stop_at() -> n` ends the epoch after its n-th step (checked before each step: a time
    budget's last, partial epoch). `state` continues an epoch from a step checkpoint (its order and sums); without it a new
    order is drawn from `generator`. With `shard.world_size` > 1 each rank takes its contiguous
    share of every global batch (batch_size is the global batch) and the sums are reduced.
    """
    loss, amp, shard, policy = _groups(loss, amp, shard, policy, flat)
    if set_train_mode is not None:
        set_train_mode()  # e.g. fine-tuning: frozen batch norms stay in eval mode
    else:
        model.train()
    device = normalize.device
    steps = num_batches(len(data), batch_size, drop_last=True)
    if state is None:
        state = EpochState.start(len(data), generator)
    state.loss_sum, state.l1_sum, state.correct = (
        state.loss_sum.to(device),
        state.l1_sum.to(device),
        state.correct.to(device),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    task = task_of(data)  # classification, multi-label or segmentation (masks), from the labels
    t0 = time.perf_counter()
    stop = len(data) - len(data) % batch_size if len(data) >= batch_size else len(data)
    n_order = len(state.order)
    for start, x, y in _train_batches(
        data, state.order, range(state.step * batch_size, stop, batch_size), batch_size, device
    ):
        end = batch_end(start, batch_size, n_order)  # the last batch also takes the remainder (training/batching.py)
        if stop_at is not None and start // batch_size >= stop_at():
            break
        if x.shape[0] == 0:  # streamed, and every file of the batch unreadable (reported): nothing to learn from
            state.step = start // batch_size + 1
            if scheduler is not None:
                scheduler.step()
            continue
        if augment is not None and augment.active:
            x = augment(x, generator, index=state.order[start:end], epoch=epoch)
        if shard.world_size > 1:
            x, y = _shard(x, shard.rank, shard.world_size), _shard(y, shard.rank, shard.world_size)
        y = y.to(device, non_blocking=True)
        x, targets = _model_input(model, x, y, normalize, generator, epoch, perturb_batch, resize_to, batch_transform)
        logits, total, penalty = _forward(model, x, targets, task, loss, amp, device)
        finite = _backward(total, optimizer, params, amp, policy.grad_clip, shard, device)
        global_idx = start // batch_size + 1
        if not finite:
            value = float(total.detach())
            if policy.on_nan != "skip":
                raise NonFiniteLossError(
                    f"the loss or gradient became non-finite ({value}) at step {global_idx} of this epoch",
                    step=global_idx,
                    value=value,
                    last_finite=state.last_finite_loss,
                )
            _skip_step(optimizer, scheduler, amp, state, global_idx)
            if on_step is not None:
                on_step(global_idx, steps, value, float(state.correct) / max(state.seen, 1), state.seen)
            continue
        _apply_step(model, optimizer, scheduler, amp, ema)
        _record(state, task, global_idx, y, logits, total, penalty)
        if on_step is not None:
            assert state.last_finite_loss is not None  # _record just set it
            on_step(global_idx, steps, state.last_finite_loss, float(state.correct) / state.seen, state.seen)
    return _epoch_result(state, loss.l1, shard, device, t0)


def _model_input(model, x, y, normalize: Normalize, generator, epoch: int, perturb_batch, resize_to, batch_transform):
    """An augmented uint8 batch -> (model input, targets): perturb_batch on [0, 1] pixels, normalise,
    progressive resizing, then batch_transform (mixup / cutmix) on the normalised batch."""
    if perturb_batch is not None:  # adversarial training: on [0, 1] pixels, before normalisation (training/hooks.py)
        x01 = x.to(normalize.device, non_blocking=True).float() / 255.0
        x = perturb_batch(model, PixelNormalize(normalize), x01, y, generator, epoch) * 255.0
    x = normalize(x)
    if resize_to is not None:  # progressive resizing: this epoch's smaller size
        x = resize_batch(x, resize_to)
    if batch_transform is not None:
        return batch_transform(x, y, generator)
    return x, y


class PixelNormalize:
    """perturb_batch's `normalize`: [0, 1] pixels -> the model's input (the run's Normalize works on 0-255 values)."""

    def __init__(self, normalize: Normalize):
        self.normalize = normalize

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        return self.normalize(x01 * 255.0)


def _forward(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, task: Task, spec: LossSpec, amp: PrecisionSpec, device
):
    """(logits, total loss with the L1 penalty, the penalty or None)."""
    with autocast(device, amp.precision):
        logits = model(x)
        if spec.fn is not None:
            loss = spec.fn(logits.float(), targets)
        else:  # the task's: cross-entropy, or BCE for multi-hot labels
            loss = task.train_loss(logits.float(), targets, label_smoothing=spec.label_smoothing)
    penalty = l1_penalty(spec.l1_params, spec.l1) if spec.l1 and spec.l1_params else None
    return logits, (loss + penalty if penalty is not None else loss), penalty


def _backward(
    total: torch.Tensor, optimizer, params: list, amp: PrecisionSpec, grad_clip: float | None, shard: Sharding, device
) -> bool:
    """Gradients (unscaled, clipped); whether the loss and the gradient are finite on every process."""
    fp16 = amp.fp16
    optimizer.zero_grad(set_to_none=True)
    if fp16:
        amp.scaler.scale(total).backward()
        amp.scaler.unscale_(optimizer)
    else:
        total.backward()
    if grad_clip:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    elif not fp16:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    # one sync per step; with fp16 the scaler skips steps with inf gradients itself
    finite = bool(torch.isfinite(total)) if fp16 else bool(torch.isfinite(total) & torch.isfinite(grad_norm))
    if shard.world_size > 1:
        flag = torch.tensor([0.0 if finite else 1.0], device=device)
        torch.distributed.all_reduce(flag)
        finite = float(flag) == 0.0
    return finite


def _skip_step(optimizer, scheduler, amp: PrecisionSpec, state: EpochState, global_idx: int) -> None:
    """on_nan="skip": no update, but the step counts (schedule, position, skipped)."""
    optimizer.zero_grad(set_to_none=True)
    if amp.fp16:
        amp.scaler.update()
    if scheduler is not None:
        scheduler.step()
    state.step = global_idx
    state.skipped += 1


def _apply_step(model: nn.Module, optimizer, scheduler, amp: PrecisionSpec, ema) -> None:
    if amp.fp16:
        amp.scaler.step(optimizer)
        amp.scaler.update()
    else:
        optimizer.step()
    if scheduler is not None:
        scheduler.step()
    if ema is not None:
        ema.update(model)


def _record(
    state: EpochState,
    task: Task,
    global_idx: int,
    y: torch.Tensor,
    logits: torch.Tensor,
    total: torch.Tensor,
    penalty: torch.Tensor | None,
) -> None:
    n = y.shape[0]
    state.seen += n
    state.step = global_idx
    state.loss_sum += total.detach().float() * n
    if penalty is not None:
        state.l1_sum += penalty.detach().float() * n
    state.correct = state.correct + task.correct(logits.detach(), y)  # segmentation: a float sum of pixel accuracies
    state.last_finite_loss = float(total.detach())


def _epoch_result(state: EpochState, l1: float, shard: Sharding, device, t0: float) -> dict[str, float]:
    loss_sum, l1_sum, correct, seen = state.loss_sum.clone(), state.l1_sum.clone(), state.correct.clone(), state.seen
    if shard.world_size > 1:
        sums = torch.stack(
            [
                loss_sum.double(),
                l1_sum.double(),
                correct.double(),
                torch.tensor(float(seen), dtype=torch.float64, device=device),
            ]
        )
        torch.distributed.all_reduce(sums)
        loss_sum, l1_sum, correct, seen = sums[0], sums[1], sums[2], int(sums[3])
    out = {
        "loss": float(loss_sum) / max(seen, 1),
        "accuracy": float(correct) / max(seen, 1),
        "images": seen,
        "seconds": time.perf_counter() - t0,
        "skipped_steps": state.skipped,
    }
    if l1:
        out["l1"] = float(l1_sum) / max(seen, 1)
    return out


def _train_batches(data: Split, order: torch.Tensor, starts: range, batch_size: int, device: torch.device):
    """(start, uint8 images, labels) of the batches of `order` beginning at `starts`: indexed from the
    decoded tensor, or for a streamed split decoded in DataLoader workers (unreadable files left out)."""
    if is_streamed(data):
        assert isinstance(data.images, FileImages)  # what is_streamed checked
        index = [order[s : batch_end(s, batch_size, len(order))] for s in starts]
        yield from (
            (s, x, y) for s, (x, y) in zip(starts, load_batches(data.images, data.labels, index, device=device))
        )
        return
    for s in starts:
        idx = order[s : batch_end(s, batch_size, len(order))]
        yield s, data.images[idx], data.labels[idx]


def _eval_batches(data: Split, batch_size: int, device: torch.device):
    """uint8 images in data order, in batches (streamed splits: unreadable files as black images)."""
    if is_streamed(data):
        assert isinstance(data.images, FileImages)  # what is_streamed checked
        yield from (
            x
            for x, _ in load_batches(
                data.images, data.labels, list(batches(len(data), batch_size)), device=device, drop_unreadable=False
            )
        )
        return
    for idx in batches(len(data), batch_size):
        yield data.images[idx]


@torch.no_grad()
def predict_logits(
    model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32"
) -> torch.Tensor:
    """Logits (N, num_classes) as float32 on the CPU, in data order."""
    model.eval()
    out = []
    for x in _eval_batches(data, batch_size, normalize.device):
        with autocast(normalize.device, precision):
            out.append(model(normalize(x)).float().cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def evaluate(
    model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32"
) -> dict[str, float]:
    """Loss and accuracy of `model` on `data` (no label smoothing). Multi-label: mean BCE and exact match."""
    t0 = time.perf_counter()
    logits = predict_logits(model, data, normalize=normalize, batch_size=batch_size, precision=precision)
    if len(data) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "images": 0, "seconds": 0.0}
    task = task_of(data)  # classification, multi-label or segmentation (masks), from the labels
    loss = task.eval_loss(logits, data.labels).item()
    acc = float(task.correct(logits, data.labels)) / len(data)
    return {"loss": loss, "accuracy": acc, "images": len(data), "seconds": time.perf_counter() - t0}
