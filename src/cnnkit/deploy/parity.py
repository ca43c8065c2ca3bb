"""PyTorch vs onnxruntime on the same inputs: max / mean absolute logit difference and top-1
agreement. The check passes when every top-1 agrees and max |diff| <= tolerance. A top-1 that
differs only between classes whose PyTorch logits are within the tolerance of each other (a tie,
common with random weights) counts as agreeing, and is counted separately as `ties`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch

from cnnkit.data.preprocess import Normalize

DEFAULT_TOLERANCE = 1e-3


@dataclass
class Parity:
    images: int
    source: str  # "test split" or "random inputs"
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float  # 0..1
    ties: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.top1_agreement >= 1.0 and self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.ok}

    def text(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        return (
            f"parity {verdict} on {self.images} images ({self.source}): max |logit diff| {self.max_abs_diff:.2e} "
            f"(tolerance {self.tolerance:.0e}), mean {self.mean_abs_diff:.2e}, top-1 agreement {self.top1_agreement:.2%}"
            + (f" ({self.ties} ties within tolerance)" if self.ties else "")
        )


def compare_logits(ref: torch.Tensor, got: torch.Tensor, *, tolerance: float, source: str) -> Parity:
    diff = (ref - got).abs()
    a, b = ref.argmax(1), got.argmax(1)
    differ = a != b
    gap = (ref.gather(1, a[:, None]) - ref.gather(1, b[:, None])).squeeze(1).abs()
    ties = int((differ & (gap <= tolerance)).sum())
    agree = int((~differ).sum()) + ties
    n, positions = len(ref), differ.numel()  # positions: images, or pixels of (N, K, H, W) segmentation logits
    return Parity(
        n,
        source,
        float(diff.max()) if n else 0.0,
        float(diff.mean()) if n else 0.0,
        agree / positions if positions else 1.0,
        ties,
        tolerance,
    )


@torch.no_grad()
def check_parity(
    model: torch.nn.Module,
    onnx_path: str | os.PathLike,
    images: torch.Tensor,
    normalize: Normalize,
    *,
    source: str,
    tolerance: float = DEFAULT_TOLERANCE,
    batch_size: int = 64,
) -> Parity:
    """Compare `model` (eager, fp32) with the ONNX file on uint8 `images`."""
    from cnnkit.deploy.runtime import run_logits, session

    model = model.cpu().float().eval()
    sess = session(onnx_path)
    ref, got = [], []
    for i in range(0, len(images), batch_size):
        x = normalize(images[i : i + batch_size])
        ref.append(model(x).float())
        got.append(run_logits(sess, x))
    return compare_logits(torch.cat(ref), torch.cat(got), tolerance=tolerance, source=source)
