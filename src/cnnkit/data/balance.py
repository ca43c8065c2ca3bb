"""Class imbalance, the library side: counts, loss weights and balanced sampling.

Works on single-label (N,) int64 labels and on multi-hot (N, K) float labels. The trainer
chooses how to use them:

- class-weighted loss: `F.cross_entropy(logits, y, weight=class_weights(train.labels, K))`;
  multi-label: `F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight(train.labels))`;
- balanced sampling: each epoch, `balanced_indices(train.labels, len(train), generator)`
  instead of a plain permutation (or `torch.utils.data.WeightedRandomSampler(sample_weights(...))`);
- `data.balance: oversample` is applied by `build_dataset` itself (`oversample_indices`).
"""

from __future__ import annotations

import torch

from cnnkit.data.types import strata


def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K,) images per class (multi-hot: images carrying each class)."""
    if labels.ndim == 2:
        return (labels > 0.5).sum(0).long()
    return torch.bincount(labels.long(), minlength=num_classes)


def imbalance_ratio(counts: torch.Tensor | list[int]) -> float:
    """Largest over smallest non-zero class count (1.0: balanced)."""
    c = torch.as_tensor(counts, dtype=torch.float64)
    c = c[c > 0]
    return float(c.max() / c.min()) if len(c) else 1.0


def class_weights(labels: torch.Tensor, num_classes: int, power: float = 1.0) -> torch.Tensor:
    """(K,) float32 loss weights proportional to count^-power (power 1: inverse frequency,
    0.5: its square root), scaled so the average weight over the training images is 1.
    A class with no image gets weight 0."""
    counts = class_counts(labels, num_classes).double()
    w = torch.where(counts > 0, counts.clamp_min(1).pow(-power), torch.zeros_like(counts))
    total = float((w * counts).sum())
    return (w * counts.sum() / total).float() if total > 0 else torch.ones(num_classes)


def pos_weight(labels: torch.Tensor) -> torch.Tensor:
    """(K,) BCE `pos_weight` for multi-hot labels: negatives / positives per class (0 when none)."""
    pos = (labels > 0.5).sum(0).double()
    neg = labels.shape[0] - pos
    return torch.where(pos > 0, neg / pos.clamp_min(1), torch.zeros_like(pos)).float()


def sample_weights(labels: torch.Tensor) -> torch.Tensor:
    """(N,) sampling weights that give every class (stratum for multi-hot rows) equal total weight."""
    groups = strata(labels)
    _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    weights: torch.Tensor = (1.0 / counts.double())[inverse]  # torch.unique's tuple is untyped
    return weights


def balanced_indices(labels: torch.Tensor, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`num_samples` indices drawn with replacement so each class is equally likely."""
    return torch.multinomial(sample_weights(labels), num_samples, replacement=True, generator=generator)


def oversample_indices(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Every index once, plus seeded repeats of each smaller class up to the largest class's count."""
    groups = strata(labels)
    g = torch.Generator().manual_seed(seed + 2)
    classes, counts = torch.unique(groups, return_counts=True)
    target = int(counts.max()) if len(counts) else 0
    out = []
    for c, n in zip(classes.tolist(), counts.tolist()):
        idx = torch.nonzero(groups == c).flatten()
        reps = [idx] * (target // n)
        extra = target % n
        if extra:
            reps.append(idx[torch.randperm(n, generator=g)[:extra]])
        out.append(torch.cat(reps))
    return torch.sort(torch.cat(out)).values if out else torch.zeros(0, dtype=torch.long)
