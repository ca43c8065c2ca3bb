"""`train_one_epoch` and `evaluate`: plain functions with explicit arguments returning metric dicts.

One epoch, top to bottom: the epoch's order (EpochState, training/epoch_state.py), then for each
batch (training/batching.py): augment, this rank's share, the model input (`_model_input`:
perturb_batch on [0, 1] pixels, normalise, progressive resizing, batch_transform), then one
optimiser step (training/step.py: forward, backward, update or stop/skip) and `on_step`.

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

import torch
from torch import nn

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize, num_batches
from cnnkit.data.types import Split
from cnnkit.tasks import task_of
from cnnkit.training import step as one_step
from cnnkit.training.batching import batch_end, train_batches
from cnnkit.training.epoch_state import EpochState, Sampler
from cnnkit.training.hooks import BatchTransform, PerturbBatch
from cnnkit.training.progressive import resize_batch
from cnnkit.training.specs import LossSpec, PrecisionSpec, Sharding, StepPolicy, groups
from cnnkit.training.step import NonFiniteLossError, l1_penalty
from cnnkit.training.validate import evaluate, predict_logits

__all__ = [  # the loop's names, wherever they are defined
    "EpochState",
    "LossSpec",
    "NonFiniteLossError",
    "PrecisionSpec",
    "Sampler",
    "Sharding",
    "StepPolicy",
    "evaluate",
    "l1_penalty",
    "predict_logits",
    "train_one_epoch",
]

StepCallback = Callable[[int, int, float, float, int], None]  # (step, steps, loss, acc, images)


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
    loss, amp, shard, policy = groups(loss, amp, shard, policy, flat)
    if set_train_mode is not None:
        set_train_mode()  # e.g. fine-tuning: frozen batch norms stay in eval mode
    else:
        model.train()
    device = normalize.device
    steps = num_batches(len(data), batch_size, drop_last=True)
    state = (state if state is not None else EpochState.start(len(data), generator)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    task = task_of(data)  # classification, multi-label or segmentation (masks), from the labels
    t0 = time.perf_counter()
    for start, x, y in train_batches(data, state.order, _starts(len(data), state.step, batch_size), batch_size, device):
        if stop_at is not None and start // batch_size >= stop_at():
            break
        global_idx = start // batch_size + 1
        if x.shape[0] == 0:  # streamed, and every file of the batch unreadable (reported): nothing to learn from
            state.step = global_idx
            if scheduler is not None:
                scheduler.step()
            continue
        if augment is not None and augment.active:
            x = augment(
                x, generator, index=state.order[start : batch_end(start, batch_size, len(state.order))], epoch=epoch
            )
        if shard.world_size > 1:
            x, y = shard.take(x), shard.take(y)
        y = y.to(device, non_blocking=True)
        x, targets = _model_input(model, x, y, normalize, generator, epoch, perturb_batch, resize_to, batch_transform)
        logits, total, penalty = one_step.forward(model, x, targets, task, loss, amp, device)
        if one_step.backward(total, optimizer, params, amp, policy.grad_clip, shard, device):
            one_step.apply(model, optimizer, scheduler, amp, ema)
            value = one_step.record(state, task, global_idx, y, logits, total, penalty)
        else:
            value = one_step.non_finite(total, policy, optimizer, scheduler, amp, state, global_idx)
        if on_step is not None:
            on_step(global_idx, steps, value, float(state.correct) / max(state.seen, 1), state.seen)
    return _epoch_result(state, loss.l1, shard, device, t0)


def _starts(n: int, steps_done: int, batch_size: int) -> range:
    """Where the epoch's remaining batches start (after `steps_done` steps; a remainder joins the last batch)."""
    stop = n - n % batch_size if n >= batch_size else n
    return range(steps_done * batch_size, stop, batch_size)


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


def _epoch_result(state: EpochState, l1: float, shard: Sharding, device, t0: float) -> dict[str, float]:
    """The epoch's means (summed over every process), images seen, seconds and skipped steps."""
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
