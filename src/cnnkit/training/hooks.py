"""`Hooks`: the few, typed points where other code changes what a training run does.

Call order in a run (tests/training/test_hooks.py records it on a tiny run):

    setup      param_groups(model) -> groups          once, when the optimiser is built
               (loss_fn, batch_transform: taken as given; defaults from the config when None)
    each step  perturb_batch(model, normalize, x01, y, generator, epoch) -> x01_adv
                                                       after augmentation, before normalisation
               batch_transform(x, y, generator) -> (x, targets)
                                                       on the normalised batch (mixup / cutmix)
               loss_fn(logits, targets) -> loss        the loss of the step
               on_step(epoch, step, loss)              after the optimiser step (1-based epoch and step)
    each epoch on_epoch_end(epoch, row)                after the epoch's row is recorded (metrics.csv,
                                                       best.ckpt, last.ckpt written); an exception raised
                                                       here (e.g. optuna.TrialPruned) ends the run there
    end        on_end(run)                             once, after every result file is written (rank 0)

perturb_batch's contract (adversarial training, cnnkit.robust.training.perturb_batch):
`x01` is the float pixel batch in [0, 1] (N, C, H, W) on the training device, augmented,
not yet normalised, and for several processes already this rank's share; `normalize(x01)`
maps it to the model's input (the run's Normalize: mean/std, channels_last); `y` the
integer labels (multi-label: the multi-hot float labels); `generator` the run's seeded
generator (so a resumed run replays the same perturbations); `epoch` 1-based. It returns
a tensor of the same shape (in [0, 1]) that the loop normalises and trains on. It is
called with the model in training mode; switch to eval() and back yourself if the attack
must not update BatchNorm statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> scalar loss
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
ParamGroups = Callable[[torch.nn.Module], list[dict]]  # model -> optimiser groups with "lr_scale"
PerturbBatch = Callable[
    [torch.nn.Module, Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor, torch.Generator, int],
    torch.Tensor,
]
StepHook = Callable[[int, int, float], None]  # (epoch, step within the epoch, loss)
EpochHook = Callable[[int, dict], None]  # (1-based epoch, its metrics row: val_accuracy, val_loss, train_loss...)
EndHook = Callable[[Any], None]  # (the finished training.trainer.Run)


@dataclass
class Hooks:
    """Every hook of a run; None: the configured default (or nothing)."""

    loss_fn: LossFn | None = None
    batch_transform: BatchTransform | None = None
    param_groups: ParamGroups | None = None
    perturb_batch: PerturbBatch | None = None
    on_step: StepHook | None = None
    on_epoch_end: EpochHook | None = None
    on_end: EndHook | None = None
