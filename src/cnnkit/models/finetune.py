"""Fine-tuning a pretrained model: which parameters train, at which learning rate.

Modes (`model.finetune`):
  head     feature extraction: the backbone is frozen (its batch norms in eval mode, so their
           running statistics stay the pretrained ones) and only the classifier trains; when no
           augmentation needs fresh passes, the backbone's features are computed once per image
           and the head trains on them in seconds (`FeatureCache` / `fit_head` here for library use;
           `cnnkit train` does it in cnnkit.training.head_only, through its ordinary loop).
  full     everything trains; the backbone at `backbone_lr_scale` x the head's learning rate
           (discriminative learning rates).
  gradual  the head first, then the backbone's stages unfrozen one by one from the top
           (`gradual_unfreeze(model, epoch, epochs)` at the start of every epoch).
  fine_tune  fastai's schedule: the head alone first (the trainer runs `fit_head` on cached
           features for model.head_epochs epochs before epoch 1), then everything at
           discriminative rates for train.epochs.

Everything here is a plain function of the model; the training loop calls them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
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


def unfreeze_top_stages(model: nn.Module, k: int) -> None:
    """Unfreeze the classifier and everything from the k-th last stage onwards (k = 0: head only;
    k >= the number of stages: the whole model)."""
    stages = backbone_stages(model)
    names = [n for n, _ in model.named_parameters()]
    if k >= len(stages):
        start = 0
    elif k <= 0:
        start = len(names)
    else:
        prefix = stages[len(stages) - k] + "."
        start = next((i for i, n in enumerate(names) if n.startswith(prefix)), len(names))
    head = set(head_parameter_names(model))
    for i, (n, p) in enumerate(model.named_parameters()):
        p.requires_grad_(i >= start or n in head)


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


def train_mode(model: nn.Module) -> nn.Module:
    """`model.train()`, except that batch norms whose parameters are frozen stay in eval mode
    (their running statistics are the pretrained ones). Call it instead of model.train()."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.requires_grad:
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


class FeatureCache:
    """The frozen backbone's features, computed once per image (`head` mode without augmentation).

    Stored on the CPU in float16 by default (a 1280x5x5 Lite0 map is 64 KB per image)."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        self.features, self.labels = features, labels

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: nn.Module,
        batches: Iterable,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float16,
    ) -> FeatureCache:
        was_training = model.training
        model.eval()
        feats, labels = [], []
        for x, y in batches:
            feats.append(model.forward_features(x.to(device)).to("cpu", dtype))
            labels.append(torch.as_tensor(y).cpu())
        model.train(was_training)
        return cls(torch.cat(feats), torch.cat(labels))

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for i in range(0, len(self), batch_size):
            idx = order[i : i + batch_size]
            yield self.features[idx].to(device, torch.float32), self.labels[idx].to(device)


def fit_head(
    model: nn.Module,
    cache: FeatureCache,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[float]:
    """Train only the classifier on cached features (AdamW); returns the mean loss per epoch."""
    freeze_backbone(model)
    train_mode(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        total, n = 0.0, 0
        for f, y in cache.batches(batch_size, generator=g, device=device):
            loss = nn.functional.cross_entropy(model.forward_head(f), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(y), n + len(y)
        losses.append(total / max(n, 1))
    return losses
