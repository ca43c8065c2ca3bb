"""Fine-tuning a pretrained model: which parameters train, at which learning rate.

Modes (`model.finetune`):
  head     feature extraction: the backbone is frozen (its batch norms in eval mode, so their
           running statistics stay the pretrained ones) and only the classifier trains; when no
           augmentation needs fresh passes, the backbone's features are computed once per image
           and the head trains on them in seconds (cnnkit.training.head_only, through the
           trainer's ordinary loop).
  full     everything trains; the backbone at `backbone_lr_scale` x the head's learning rate
           (discriminative learning rates).
  gradual  the head first, then the backbone's stages unfrozen one by one from the top
           (`gradual_unfreeze(model, epoch, epochs)` at the start of every epoch).
  fine_tune  fastai's schedule: the head alone first (the trainer runs head_only.warm_up_head
           on cached features for model.head_epochs epochs before epoch 1), then everything at
           discriminative rates for train.epochs.

Beyond the head (full, gradual, fine_tune) every batch norm keeps the pretrained running
statistics (`train_mode(keep_bn_stats=True)`; its scale and shift still train): see train_mode.

Everything here is a plain function of the model; the training loop calls them.
"""

from __future__ import annotations

import math

from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models.weights import classifier_name

MODES = ("head", "full", "gradual", "fine_tune")


def check_mode(mode: str | None) -> None:
    if mode is not None and mode not in MODES:
        raise ConfigError(
            f"model.finetune: {mode!r} is not a fine-tuning mode; choose head, full, gradual or fine_tune (or leave it unset)"
        )


def head_parameter_names(model: nn.Module) -> list[str]:
    prefix = classifier_name(model) + "."
    return [n for n, _ in model.named_parameters() if n.startswith(prefix)]


def freeze_backbone(model: nn.Module) -> None:
    """Only the classifier trains."""
    head = set(head_parameter_names(model))
    for n, p in model.named_parameters():
        p.requires_grad_(n in head)


def backbone_stages(model: nn.Module) -> list[str]:
    """Module names of the backbone's stages, input to output (for gradual unfreezing)."""
    stage_names = getattr(model, "stage_names", None)
    if stage_names:
        return list(stage_names)
    features = getattr(model, "features", None)
    if isinstance(features, nn.Module):
        return [f"features.{n}" for n, _ in features.named_children()]
    return []


def _stage_start(model: nn.Module, stages: list[str], i: int) -> int:
    """The index, in model.named_parameters(), of stage `i`'s first parameter (their count past the last stage)."""
    names = [n for n, _ in model.named_parameters()]
    if i >= len(stages):
        return len(names)
    prefix = stages[i] + "."
    return next((j for j, n in enumerate(names) if n.startswith(prefix)), len(names))


def unfreeze_top_stages(model: nn.Module, k: int) -> None:
    """Unfreeze the classifier and everything from the k-th last stage onwards (k = 0: head only;
    k >= the number of stages: the whole model)."""
    stages = backbone_stages(model)
    start = 0 if k >= len(stages) else _stage_start(model, stages, len(stages) - k if k > 0 else len(stages))
    head = set(head_parameter_names(model))
    for i, (n, p) in enumerate(model.named_parameters()):
        p.requires_grad_(i >= start or n in head)


def freeze_first_stages(model: nn.Module, n: int) -> None:
    """Freeze the backbone's first `n` stages (and anything before them), leaving the rest as it is:
    the early, high-resolution layers hold generic edges and colours, and on a CPU their backward pass
    is the dearest part of a step."""
    stages = backbone_stages(model)
    if n <= 0 or not stages:
        return
    stop = _stage_start(model, stages, n)
    head = set(head_parameter_names(model))
    for i, (name, p) in enumerate(model.named_parameters()):
        if i < stop and name not in head:
            p.requires_grad_(False)


def gradual_unfreeze(model: nn.Module, epoch: int, epochs: int, head_epochs: int = 1) -> int:
    """Set which stages train in `epoch` (0-based): the head alone for `head_epochs`, then
    one more stage from the top, spread so the whole model trains in the last epoch.
    Returns the number of unfrozen stages."""
    n = len(backbone_stages(model))
    if epoch < head_epochs:
        k = 0
    else:
        steps = max(1, epochs - head_epochs)
        k = math.ceil(n * (epoch - head_epochs + 1) / steps)
    unfreeze_top_stages(model, k)
    return k


def prepare(model: nn.Module, mode: str | None) -> None:
    """Freeze for the start of training in `mode` (None or "full": everything trains)."""
    check_mode(mode)
    if mode in ("head", "gradual", "fine_tune"):
        freeze_backbone(model)
    else:
        for p in model.parameters():
            p.requires_grad_(True)


def train_mode(model: nn.Module, *, keep_bn_stats: bool = False) -> nn.Module:
    """`model.train()`, except that batch norms whose parameters are frozen stay in eval mode
    (their running statistics are the pretrained ones), and with `keep_bn_stats` every batch norm
    does: the trainable ones still learn their scale and shift, but normalise with the pretrained
    statistics, not the batch's. Call it instead of model.train().

    Why `keep_bn_stats` when a pretrained network trains beyond its head: the head learned on
    features normalised by the running statistics (eval mode, `fine_tune`'s first stage); in train
    mode the same network normalises by small batches of the new images instead, and the features
    change so much that the head falls to chance (Lite0 on the cat/dog stand-in: 100 % of a training
    subset right in eval mode, 54 % in train mode), while the running statistics drift toward those
    batches' (momentum 0.1); validation accuracy then fell in every epoch of the whole-network phase."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and (
            keep_bn_stats or (m.weight is not None and not m.weight.requires_grad)
        ):
            m.eval()
    return model


def param_groups(
    model: nn.Module, lr: float, *, backbone_lr_scale: float = 0.1, weight_decay: float = 0.0
) -> list[dict]:
    """Optimizer parameter groups: the head at `lr`, the backbone at `lr * backbone_lr_scale`.
    All parameters are listed (frozen ones too), so unfreezing later needs no new optimizer;
    biases and norm weights get no weight decay."""
    head = set(head_parameter_names(model))
    groups: dict[tuple[str, bool], list] = {}
    for n, p in model.named_parameters():
        part = "head" if n in head else "backbone"
        decay = p.dim() > 1
        groups.setdefault((part, decay), []).append(p)
    out = []
    for (part, decay), params in sorted(groups.items()):
        group_lr = lr if part == "head" else lr * backbone_lr_scale
        out.append(
            {
                "params": params,
                "lr": group_lr,
                "weight_decay": weight_decay if decay else 0.0,
                "name": f"{part}{'' if decay else '_no_decay'}",
            }
        )
    return out
