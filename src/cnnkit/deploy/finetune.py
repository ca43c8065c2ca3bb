"""Recovery fine-tuning after pruning: a small, self-contained loop (SGD with Nesterov momentum,
cosine learning rate, horizontal flips for colour images), kept here while the training engine
is being restructured. It keeps the weights of the epoch with the best held-out accuracy when a
validation split is given."""

from __future__ import annotations

import copy
import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.evaluate.predict import predict_logits

log = logging.getLogger("cnnkit")


def accuracy(model: nn.Module, split: Split, normalize: Normalize, batch_size: int = 256) -> float:
    if not len(split):
        return 0.0
    logits = predict_logits(model, split, normalize=normalize, batch_size=batch_size)
    return int((logits.argmax(1) == split.labels).sum()) / len(split)


def finetune(
    model: nn.Module,
    train: Split,
    normalize: Normalize,
    *,
    epochs: int,
    lr: float = 0.01,
    batch_size: int = 64,
    weight_decay: float = 5e-4,
    seed: int = 0,
    val: Split | None = None,
) -> list[dict]:
    """Train `model` in place for `epochs` on `train`; returns one record per epoch (loss, val accuracy)."""
    if epochs <= 0 or len(train) == 0:
        return []
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(train) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    flip = train.images.shape[1] == 3
    history, best, best_state = [], -1.0, None
    for epoch in range(1, epochs + 1):
        model.train()
        total, n = 0.0, 0
        for idx in torch.randperm(len(train), generator=g).split(batch_size):
            x = train.images[idx]
            if flip:
                mask = torch.rand(len(idx), generator=g) < 0.5
                x = torch.where(mask[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(model(normalize(x)), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + loss.item() * len(idx), n + len(idx)
        rec = {"epoch": epoch, "train_loss": total / n}
        if val is not None:
            rec["val_accuracy"] = accuracy(model, val, normalize)
            if rec["val_accuracy"] > best:
                best, best_state = rec["val_accuracy"], copy.deepcopy(model.state_dict())
        log.info("recovery epoch %d/%d: %s", epoch, epochs, rec)
        history.append(rec)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
