"""One optimiser step, in the order train_one_epoch runs it: forward (loss + L1), backward (clipped,
checked finite on every process), then either the update or, for a non-finite step, stop or skip."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.device import autocast
from cnnkit.errors import CnnkitError
from cnnkit.tasks import Task
from cnnkit.training.epoch_state import EpochState
from cnnkit.training.specs import LossSpec, PrecisionSpec, Sharding, StepPolicy


class NonFiniteLossError(CnnkitError):
    """The loss or the gradient became NaN/Inf (with on_nan="stop")."""

    def __init__(self, message: str, *, step: int, value: float, last_finite: float | None):
        super().__init__(message)
        self.step, self.value, self.last_finite = step, value, last_finite


def l1_penalty(params: list[torch.Tensor], coef: float) -> torch.Tensor:
    """coef * sum(|p|) over `params`."""
    return coef * torch.stack([p.abs().sum() for p in params]).sum()


def forward(
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


def backward(
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


def apply(model: nn.Module, optimizer, scheduler, amp: PrecisionSpec, ema) -> None:
    """The update: optimiser (through fp16's scaler), schedule, EMA."""
    if amp.fp16:
        amp.scaler.step(optimizer)
        amp.scaler.update()
    else:
        optimizer.step()
    if scheduler is not None:
        scheduler.step()
    if ema is not None:
        ema.update(model)


def record(
    state: EpochState,
    task: Task,
    global_idx: int,
    y: torch.Tensor,
    logits: torch.Tensor,
    total: torch.Tensor,
    penalty: torch.Tensor | None,
) -> float:
    """The finished step in the epoch's running sums; returns its loss."""
    n = y.shape[0]
    state.seen += n
    state.step = global_idx
    state.loss_sum += total.detach().float() * n
    if penalty is not None:
        state.l1_sum += penalty.detach().float() * n
    state.correct = state.correct + task.correct(logits.detach(), y)  # segmentation: a float sum of pixel accuracies
    state.last_finite_loss = float(total.detach())
    return state.last_finite_loss


def non_finite(
    total: torch.Tensor,
    policy: StepPolicy,
    optimizer,
    scheduler,
    amp: PrecisionSpec,
    state: EpochState,
    global_idx: int,
) -> float:
    """A non-finite step: on_nan="stop" raises NonFiniteLossError; "skip" drops the update, but the
    step counts (schedule, position, skipped). Returns the loss value."""
    value = float(total.detach())
    if policy.on_nan != "skip":
        raise NonFiniteLossError(
            f"the loss or gradient became non-finite ({value}) at step {global_idx} of this epoch",
            step=global_idx,
            value=value,
            last_finite=state.last_finite_loss,
        )
    optimizer.zero_grad(set_to_none=True)
    if amp.fp16:
        amp.scaler.update()
    if scheduler is not None:
        scheduler.step()
    state.step = global_idx
    state.skipped += 1
    return value
