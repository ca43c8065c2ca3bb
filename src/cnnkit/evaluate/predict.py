"""A model's logits over a split, in data order: the one place they are computed, for the
validation of each epoch and the end of a run (training), `cnnkit evaluate` and report.html.
With test-time augmentation (`tta`), the mean over the views' probabilities (evaluate/tta.py)."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.data.preprocess import Normalize, batches
from cnnkit.data.stream import FileImages, is_streamed, load_batches
from cnnkit.data.types import Split
from cnnkit.device import autocast


def _eval_batches(data: Split, batch_size: int, device: torch.device):
    """uint8 images in data order, in batches (streamed splits: unreadable files as black images)."""
    if is_streamed(data):
        assert isinstance(data.images, FileImages)  # what is_streamed checked
        yield from (
            x
            for x, _ in load_batches(
                data.images, data.labels, list(batches(len(data), batch_size)), device=device, drop_unreadable=False
            )
        )
        return
    for idx in batches(len(data), batch_size):
        yield data.images[idx]


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    data: Split,
    *,
    normalize: Normalize,
    batch_size: int = 500,
    precision: str = "fp32",
    tta: str = "none",
    multi_label: bool = False,
) -> torch.Tensor:
    """Logits (N, num_classes) as float32 on the CPU, in data order. `tta` flip or flip+shift: the
    log of the mean softmax over the views (multi-label: the logit of each label's mean sigmoid)."""
    if tta != "none":
        from cnnkit.evaluate.tta import predict_logits_tta

        return predict_logits_tta(
            model,
            data,
            normalize=normalize,
            mode=tta,
            batch_size=batch_size,
            precision=precision,
            multi_label=multi_label,
        )
    model.eval()
    out = []
    for x in _eval_batches(data, batch_size, normalize.device):
        with autocast(normalize.device, precision):
            out.append(model(normalize(x)).float().cpu())
    if not out:
        return torch.zeros(0, 0)
    return torch.cat(out)
