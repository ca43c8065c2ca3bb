"""The end of a segmentation run: best.ckpt scored on the test split (else validation) with the
segmentation metrics (batch by batch, scoring.py; eval.tta flip averages mirror images), and plots/segment_samples.png: the best and the worst images by pixel
accuracy, each as image | truth | prediction | errors. Called by training/results.py's
`final_evaluation` for splits with masks; returns what it returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cnnkit.config import Config
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Dataset, Split
from cnnkit.tasks.segment.outputs import sample_sheet, save_png
from cnnkit.tasks.segment.scoring import score_split

SAMPLES_FILE = "plots/segment_samples.png"
FINAL_PRECISION = "fp32"  # as training/results.py's: the headline is what `cnnkit evaluate` reproduces


def final_evaluation(
    model: torch.nn.Module, ema: Any, run_dir: Path, data: Dataset, cfg: Config, normalize: Normalize
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    best = torch.load(run_dir / "best.ckpt", map_location="cpu", weights_only=True)
    from cnnkit.checkpoint import unwrap

    unwrap(model).load_state_dict(best["state_dict"])
    split = data.test if data.test is not None else data.val
    split_name = "test" if data.test is not None else "val"

    def score(m: torch.nn.Module) -> tuple[dict[str, Any], torch.Tensor]:
        return score_split(
            m,
            split,
            data.class_names,
            normalize=normalize,
            batch_size=cfg.eval.batch_size,
            precision=FINAL_PRECISION,  # fp32 whatever trained, as `cnnkit evaluate` scores it
            tta=cfg.eval.tta,
        )

    final, preds = score(model)
    write_samples(run_dir / SAMPLES_FILE, split, preds, final)
    final_ema = None
    if ema is not None and "ema_state_dict" in best:
        ema.module.load_state_dict(best["ema_state_dict"])
        final_ema = score(ema.module)[0]
    return split_name, final, final_ema


def pick_samples(per_image: list[dict[str, Any]], n: int = 3) -> list[int]:
    """The n best and the n worst images by pixel accuracy (best first), without repeats."""
    order = sorted(range(len(per_image)), key=lambda i: -per_image[i]["pixel_accuracy"])
    chosen = order[:n] + [i for i in order[::-1][:n] if i not in order[:n]][::-1]
    return chosen


def write_samples(path: Path, split: Split, preds: torch.Tensor, final: dict[str, Any], n: int = 3) -> list[int]:
    """The sample sheet of the best and worst images; returns their indices in the split."""
    idx = pick_samples(final["per_image"], n)
    if not idx:
        return idx
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = sample_sheet(split.images[idx].numpy(), split.labels[idx].numpy(), preds[idx].numpy())
    save_png(sheet, path)
    final["samples"] = {"file": SAMPLES_FILE, "indices": idx}
    return idx
