"""Sample quality, honestly: a Fréchet distance on the features of a cnnkit *classifier* trained on the same
data ("classifier FID": Inception weights cannot be had here, and the GAN literature uses this on MNIST), so
its numbers are comparable only with other classifier-FIDs from the same classifier. The features are the
classifier head's input (what its last Linear layer sees). Also mode coverage: the share of each class among
generated images as that classifier labels them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) of two feature sets (N, D), (M, D), in float64.
    The matrix square root's trace is that of (S_a^1/2 S_b S_a^1/2)^1/2, symmetric, from two eigh."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    w, v = torch.linalg.eigh(s_a)
    root_a = v @ torch.diag(w.clamp(min=0).sqrt()) @ v.T
    middle = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + s_a.trace() + s_b.trace() - 2 * middle)


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("classifier FID needs a classifier with a Linear head; this model has none")
    return linears[-1]


@torch.no_grad()
def classifier_features(
    model: nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float], batch: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D), predicted class (N,)) of uint8 images (N, C, H, W) in the classifier's own
    normalisation; features are its last Linear layer's input."""
    model.eval()
    m = torch.tensor(mean).view(1, -1, 1, 1) * 255
    s = torch.tensor(std).view(1, -1, 1, 1) * 255
    seen: list[torch.Tensor] = []
    hook = _last_linear(model).register_forward_pre_hook(lambda _mod, args: seen.append(args[0].flatten(1).float()))
    try:
        preds = [model((images[i : i + batch].float() - m) / s).argmax(1) for i in range(0, images.shape[0], batch)]
    finally:
        hook.remove()
    return torch.cat(seen), torch.cat(preds)


def class_shares(preds: torch.Tensor, num_classes: int) -> list[float]:
    """The share of each class among `preds` (N,)."""
    return (torch.bincount(preds, minlength=num_classes).double() / max(1, preds.numel())).tolist()


def quality(
    model: nn.Module,
    mean: Sequence[float],
    std: Sequence[float],
    generated: torch.Tensor,
    real_test: torch.Tensor,
    real_train: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Classifier-FID of the generated uint8 images against the real test images, with the real-train-vs-
    real-test floor when `real_train` is given (same number of images as `generated`), and the class shares
    of the generated images."""
    f_test, _ = classifier_features(model, real_test, mean, std)
    f_gen, p_gen = classifier_features(model, generated, mean, std)
    out: dict[str, Any] = {
        "fid": frechet_distance(f_gen, f_test),
        "n_generated": generated.shape[0],
        "n_real": real_test.shape[0],
    }
    if real_train is not None:
        out["fid_real_floor"] = frechet_distance(classifier_features(model, real_train, mean, std)[0], f_test)
    out["class_shares"] = class_shares(p_gen, _last_linear(model).out_features)
    return out
