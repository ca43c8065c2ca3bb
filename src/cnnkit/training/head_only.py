"""Head-only training on cached features (`model.finetune: head` with no augmentation).

A frozen backbone (batch norm in eval mode, no augmentation) gives every image the same
features in every epoch, so they are computed once (`prepare`) and the training loop runs
on them unchanged: `train_one_epoch` / `evaluate` get a `HeadOnly` module (the model's
`forward_head`), `FeatureSplit`s in place of the image splits and a `Feed` in place of the
normaliser. Everything else is the ordinary run: the same data order, optimiser, schedule,
dropout draws, metrics.csv, and checkpoints holding the whole model's state dict (the
backbone untouched), so evaluate / predict and `--resume` work as for any run. The test
split is evaluated at the end through the whole model, as in every run.

The results equal those of head training through the backbone up to float rounding
(convolutions batched differently); features are kept in float32 unless they would take
more than `MAX_FLOAT32_BYTES`, in which case float16 halves the memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from cnnkit.data.preprocess import Normalize, batches
from cnnkit.data.types import Split
from cnnkit.device import autocast

MAX_FLOAT32_BYTES = 2 * 1024**3


class FeatureSplit(Split):
    """A Split whose `images` are cached features (float, any shape) instead of uint8 images."""

    def __post_init__(self) -> None:
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(
                f"labels shape {tuple(self.labels.shape)} does not match {self.images.shape[0]} feature rows"
            )
        self.labels = self.labels.long() if self.labels.ndim == 1 else self.labels.float()


class HeadOnly(nn.Module):
    """`model.forward_head` as a module. The whole model is its `module`, so `unwrap()` (EMA,
    checkpoints) finds the model itself; only the head's parameters require gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.module = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.module.forward_head(features)


class Feed:
    """Stands in for `Normalize` on cached features: they only move to the device (as float32)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).float()


@dataclass
class HeadOnlyData:
    head: HeadOnly
    train: FeatureSplit
    val: FeatureSplit
    feed: Feed
    seconds: float  # time spent computing the features
    dtype: torch.dtype


@torch.no_grad()
def split_features(
    model: nn.Module,
    split: Split,
    normalize: Normalize,
    *,
    batch_size: int = 256,
    precision: str = "fp32",
    dtype: torch.dtype | None = None,
    max_float32_bytes: int = MAX_FLOAT32_BYTES,
) -> FeatureSplit:
    """`model.forward_features` of every image of `split` (eval mode, in data order), on the CPU."""
    was_training = model.training
    model.eval()
    rows: list[torch.Tensor] = []
    try:
        for idx in batches(len(split), batch_size):
            with autocast(normalize.device, precision):
                f = model.forward_features(normalize(split.images[idx]))
            if dtype is None:  # decided on the first batch: float32 unless the whole split would be too big
                per_image = f[0].numel() * 4
                dtype = torch.float32 if per_image * len(split) <= max_float32_bytes else torch.float16
            rows.append(f.to("cpu", dtype))
    finally:
        model.train(was_training)
    if not rows:
        return FeatureSplit(torch.zeros(0), split.labels[:0])
    return FeatureSplit(torch.cat(rows), split.labels)


def prepare(
    model: nn.Module,
    train: Split,
    val: Split,
    normalize: Normalize,
    *,
    batch_size: int = 256,
    precision: str = "fp32",
    message: Callable[[str], None] | None = None,
) -> HeadOnlyData:
    """Compute the frozen backbone's features of the train and val splits once."""
    t0 = time.perf_counter()
    n = len(train) + len(val)
    if message is not None:
        message(
            f"cnnkit: head-only training: computing the frozen backbone's features once ({len(train)} train + {len(val)} val images)"
        )
    tr = split_features(model, train, normalize, batch_size=batch_size, precision=precision)
    va = split_features(
        model, val, normalize, batch_size=batch_size, precision=precision, dtype=tr.images.dtype if len(tr) else None
    )
    seconds = time.perf_counter() - t0
    if message is not None:
        shape = "x".join(str(s) for s in tr.images.shape[1:])
        message(
            f"cnnkit: features ready in {seconds:.1f}s ({n} images, {shape} {str(tr.images.dtype).removeprefix('torch.')} each); the head trains on them"
        )
    return HeadOnlyData(HeadOnly(model), tr, va, Feed(normalize.device), seconds, tr.images.dtype)


def warm_up_head(
    model: nn.Module,
    train: Split,
    val: Split,
    normalize: Normalize,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    precision: str = "fp32",
    eval_batch_size: int = 256,
    label_smoothing: float = 0.0,
    message: Callable[[str], None] | None = None,
) -> list[dict[str, float]]:
    """`model.finetune: fine_tune`'s first stage: the head alone, `epochs` epochs on the frozen
    backbone's features computed once (`prepare`), through the training loop itself
    (`loop.train_one_epoch` / `loop.evaluate` on the `HeadOnly` module, as head-only runs do),
    with AdamW at `lr` (no decay on biases), before the whole network trains. The head's weights
    stay in `model`. Returns one {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} per epoch."""
    from cnnkit.models import finetune as ft
    from cnnkit.training.loop import LossSpec, PrecisionSpec, evaluate, train_one_epoch
    from cnnkit.training.optim import param_groups

    ft.freeze_backbone(model)
    cached = prepare(model, train, val, normalize, batch_size=eval_batch_size, precision=precision, message=message)
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
    generator = torch.Generator().manual_seed(seed)

    def head_train_mode() -> None:  # frozen batch norms stay in eval mode
        ft.train_mode(model)

    rows = []
    for epoch in range(1, epochs + 1):
        tr = train_one_epoch(
            cached.head,
            cached.train,
            optimizer=optimizer,
            scheduler=None,
            normalize=cached.feed,  # type: ignore[arg-type]  # Feed stands in for Normalize on features
            batch_size=batch_size,
            generator=generator,
            loss=LossSpec(label_smoothing=label_smoothing),
            amp=PrecisionSpec(precision),
            set_train_mode=head_train_mode,
            epoch=epoch,
        )
        va = evaluate(cached.head, cached.val, normalize=cached.feed, batch_size=eval_batch_size)  # type: ignore[arg-type]
        rows.append(
            {
                "train_loss": tr["loss"],
                "train_accuracy": tr["accuracy"],
                "val_loss": va["loss"],
                "val_accuracy": va["accuracy"],
            }
        )
    model.eval()
    if message is not None and rows:
        message(
            f"cnnkit: fine_tune: the head trained alone for {epochs} epochs on those features (val accuracy {rows[-1]['val_accuracy']:.2%}); now the whole network trains"
        )
    return rows
