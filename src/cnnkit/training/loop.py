"""`train_one_epoch` and `evaluate`: plain functions with explicit arguments returning metric dicts.

Hook points for other areas, all plain arguments of `train_one_epoch`:
    loss_fn(logits, targets) -> loss       class weights, custom losses (default: cross-entropy
                                           with label smoothing; multi-hot labels: binary
                                           cross-entropy, see training/losses.py); targets may be soft (N, C)
    batch_transform(x, y, generator)       mixup / cutmix on the normalised batch; returns (x, targets)
    on_step(step, steps, loss, acc, images) after every optimiser step (progress, checkpoints)
    EpochState.start(n, generator, sampler)  sampler(generator) -> the epoch's order (balanced sampling)

A streamed split (its images a `cnnkit.data.stream.FileImages`, for data too large to decode
once) is read in the same order through DataLoader workers; the rest of the step is the same.

Multi-label splits (labels (N, K) multi-hot) are detected from the labels: their default loss
is BCE on each logit and "accuracy" is the exact match (every label right at sigmoid >= 0.5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize, batches, num_batches
from cnnkit.data.stream import is_streamed, load_batches
from cnnkit.data.types import Split
from cnnkit.errors import CnnkitError
from cnnkit.training.batching import batch_end
from cnnkit.training.device import autocast
from cnnkit.training.losses import multilabel_bce
from cnnkit.training.progressive import resize_batch

StepCallback = Callable[[int, int, float, float, int], None]  # (step, steps, loss, acc, images)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> scalar loss
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
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
    def start(cls, n: int, generator: torch.Generator, sampler: Sampler | None = None) -> "EpochState":
        """A new epoch: a permutation of the n images, or the order `sampler` draws (e.g. balanced,
        with replacement). The order is part of the state, so a resumed epoch replays it exactly."""
        return cls(order=torch.randperm(n, generator=generator) if sampler is None else sampler(generator))

    def state_dict(self) -> dict:
        return {
            "order": self.order.clone(), "step": self.step, "loss_sum": self.loss_sum.detach().cpu().clone(),
            "l1_sum": self.l1_sum.detach().cpu().clone(), "correct": self.correct.detach().cpu().clone(), "seen": self.seen,
            "skipped": self.skipped, "last_finite_loss": self.last_finite_loss,
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> "EpochState":
        return cls(**d)


def l1_penalty(params: list[torch.Tensor], coef: float) -> torch.Tensor:
    """coef * sum(|p|) over `params`."""
    return coef * torch.stack([p.abs().sum() for p in params]).sum()


def _shard(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    per = t.shape[0] // world
    return t[rank * per : (rank + 1) * per]


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
    label_smoothing: float = 0.0,
    loss_fn: LossFn | None = None,
    batch_transform: BatchTransform | None = None,
    precision: str = "fp32",
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
    l1: float = 0.0,
    l1_params: list[torch.Tensor] | None = None,
    on_nan: str = "stop",
    ema=None,
    state: EpochState | None = None,
    rank: int = 0,
    world_size: int = 1,
    set_train_mode: Callable[[], None] | None = None,
    on_step: StepCallback | None = None,
    stop_at: Callable[[], int] | None = None,
    epoch: int = 1,
    resize_to: tuple[int, int] | None = None,
) -> dict[str, float]:
    """One pass over `data` (shuffled; the last batch also takes the remainder, see training/batching.py). Returns loss, accuracy, images, seconds.

    `epoch` (1-based) drives augment.alternate_flip; `resize_to` (H, W) resizes the normalised
    batches (progressive resizing). `stop_at() -> n` ends the epoch after its n-th step (checked before each step: a time
    budget's last, partial epoch). `state` continues an epoch from a step checkpoint (its order and sums); without it a new
    order is drawn from `generator`. With `world_size` > 1 each rank takes its contiguous
    share of every global batch (batch_size is the global batch) and the sums are reduced.
    """
    if set_train_mode is not None:
        set_train_mode()  # e.g. fine-tuning: frozen batch norms stay in eval mode
    else:
        model.train()
    device = normalize.device
    steps = num_batches(len(data), batch_size, drop_last=True)
    if state is None:
        state = EpochState.start(len(data), generator)
    state.loss_sum, state.l1_sum, state.correct = state.loss_sum.to(device), state.l1_sum.to(device), state.correct.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    fp16 = scaler is not None and scaler.is_enabled()
    t0 = time.perf_counter()
    stop = len(data) - len(data) % batch_size if len(data) >= batch_size else len(data)
    n_order = len(state.order)
    for start, x, y in _train_batches(data, state.order, range(state.step * batch_size, stop, batch_size), batch_size, device):
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
        if world_size > 1:
            x, y = _shard(x, rank, world_size), _shard(y, rank, world_size)
        x = normalize(x)
        if resize_to is not None:  # progressive resizing: this epoch's smaller size
            x = resize_batch(x, resize_to)
        y = y.to(device, non_blocking=True)
        targets = y
        if batch_transform is not None:
            x, targets = batch_transform(x, y, generator)
        with autocast(device, precision):
            logits = model(x)
            if loss_fn is not None:
                loss = loss_fn(logits.float(), targets)
            elif data.multi_label:
                loss = multilabel_bce(logits.float(), targets, label_smoothing=label_smoothing)
            else:
                loss = F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
        penalty = l1_penalty(l1_params, l1) if l1 and l1_params else None
        total = loss + penalty if penalty is not None else loss
        optimizer.zero_grad(set_to_none=True)
        if fp16:
            scaler.scale(total).backward()
            scaler.unscale_(optimizer)
        else:
            total.backward()
        if grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        elif not fp16:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        # one sync per step; with fp16 the scaler skips steps with inf gradients itself
        finite = bool(torch.isfinite(total)) if fp16 else bool(torch.isfinite(total) & torch.isfinite(grad_norm))
        if world_size > 1:
            flag = torch.tensor([0.0 if finite else 1.0], device=device)
            torch.distributed.all_reduce(flag)
            finite = float(flag) == 0.0
        global_idx = start // batch_size + 1
        if not finite:
            value = float(total.detach())
            if on_nan == "skip":
                optimizer.zero_grad(set_to_none=True)
                if fp16:
                    scaler.update()
                if scheduler is not None:
                    scheduler.step()
                state.step = global_idx
                state.skipped += 1
                if on_step is not None:
                    on_step(global_idx, steps, value, float(state.correct) / max(state.seen, 1), state.seen)
                continue
            raise NonFiniteLossError(
                f"the loss or gradient became non-finite ({value}) at step {global_idx} of this epoch", step=global_idx, value=value,
                last_finite=state.last_finite_loss,
            )
        if fp16:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(model)
        n = y.shape[0]
        state.seen += n
        state.step = global_idx
        state.loss_sum += total.detach().float() * n
        if penalty is not None:
            state.l1_sum += penalty.detach().float() * n
        state.correct += _correct(logits.detach(), y)
        loss_value = float(total.detach())
        state.last_finite_loss = loss_value
        if on_step is not None:
            on_step(global_idx, steps, loss_value, float(state.correct) / state.seen, state.seen)
    loss_sum, l1_sum, correct, seen = state.loss_sum.clone(), state.l1_sum.clone(), state.correct.clone(), state.seen
    if world_size > 1:
        sums = torch.stack([loss_sum.double(), l1_sum.double(), correct.double(), torch.tensor(float(seen), dtype=torch.float64, device=device)])
        torch.distributed.all_reduce(sums)
        loss_sum, l1_sum, correct, seen = sums[0], sums[1], sums[2], int(sums[3])
    out = {
        "loss": float(loss_sum) / max(seen, 1), "accuracy": float(correct) / max(seen, 1), "images": seen,
        "seconds": time.perf_counter() - t0, "skipped_steps": state.skipped,
    }
    if l1:
        out["l1"] = float(l1_sum) / max(seen, 1)
    return out


def _train_batches(data: Split, order: torch.Tensor, starts: range, batch_size: int, device: torch.device):
    """(start, uint8 images, labels) of the batches of `order` beginning at `starts`: indexed from the
    decoded tensor, or for a streamed split decoded in DataLoader workers (unreadable files left out)."""
    if is_streamed(data):
        index = [order[s : batch_end(s, batch_size, len(order))] for s in starts]
        yield from ((s, x, y) for s, (x, y) in zip(starts, load_batches(data.images, data.labels, index, device=device)))
        return
    for s in starts:
        idx = order[s : batch_end(s, batch_size, len(order))]
        yield s, data.images[idx], data.labels[idx]


def _eval_batches(data: Split, batch_size: int, device: torch.device):
    """uint8 images in data order, in batches (streamed splits: unreadable files as black images)."""
    if is_streamed(data):
        yield from (x for x, _ in load_batches(data.images, data.labels, list(batches(len(data), batch_size)), device=device, drop_unreadable=False))
        return
    for idx in batches(len(data), batch_size):
        yield data.images[idx]


def _correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Images right: top-1 class, or for multi-hot y every label right at sigmoid >= 0.5 (exact match)."""
    if y.ndim == 2:
        return ((torch.sigmoid(logits.float()) >= 0.5) == (y > 0.5)).all(1).sum()
    return (logits.argmax(1) == y).sum()


@torch.no_grad()
def predict_logits(model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32") -> torch.Tensor:
    """Logits (N, num_classes) as float32 on the CPU, in data order."""
    model.eval()
    out = []
    for x in _eval_batches(data, batch_size, normalize.device):
        with autocast(normalize.device, precision):
            out.append(model(normalize(x)).float().cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)


def evaluate(model: nn.Module, data: Split, *, normalize: Normalize, batch_size: int = 500, precision: str = "fp32") -> dict[str, float]:
    """Loss and accuracy of `model` on `data` (no label smoothing). Multi-label: mean BCE and exact match."""
    t0 = time.perf_counter()
    logits = predict_logits(model, data, normalize=normalize, batch_size=batch_size, precision=precision)
    if len(data) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "images": 0, "seconds": 0.0}
    loss = (multilabel_bce(logits, data.labels) if data.multi_label else F.cross_entropy(logits, data.labels)).item()
    acc = int(_correct(logits, data.labels)) / len(data)
    return {"loss": loss, "accuracy": acc, "images": len(data), "seconds": time.perf_counter() - t0}
