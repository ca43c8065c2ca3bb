"""Recovery fine-tuning after pruning, through the ordinary training engine (`cnnkit.training.train`).

The pruned model is saved as `pruned.ckpt` (a normal cnnkit checkpoint with its `pruning` entry);
the parent run's stored config (its recipe already expanded: data, augmentation, optimiser,
schedule, precision) trains it again with `model.weights` naming that file, so the engine rebuilds
the pruned widths (models/structure.py), and its checkpoints carry them too. The recovery run is an
ordinary run folder, `<pruned run>/recovery/`: bf16 / the schedule / checkpoints / Ctrl-C and
`cnnkit train --resume <pruned run>/recovery` behave as for any run.
"""

from __future__ import annotations

import math
from pathlib import Path

from cnnkit.config import Config
from cnnkit.errors import CnnkitError


def recovery_config(
    ckpt: dict,
    weights: Path,
    *,
    epochs: int,
    lr: float | None,
    batch_size: int | None,
    train_images: int | None,
    seed: int,
) -> Config:
    """The parent run's config, starting from the pruned weights, for `epochs` epochs."""
    stored = ckpt.get("config")
    if not isinstance(stored, dict):
        raise CnnkitError(
            "the checkpoint stores no training config, so recovery cannot train on the run's data; use --finetune-epochs 0"
        )
    cfg = Config.from_dict(stored, source="the parent run's stored config")
    over: dict = {
        "model.weights": str(weights),
        "model.pretrained": False,  # the pruned weights replace the published ones
        "model.finetune": None,  # pruning changed the backbone: everything trains
        "model.strict_weights": True,
        "train.epochs": epochs,
        "train.time_budget": 0.0,
        "train.early_stopping": 0,
        "train.recipe": "none",  # the stored config holds the expanded recipe already
        "train.seed": seed,
        "run.name": None,
        "run.html_report": False,
    }
    if lr is not None:
        over["optim.lr"] = lr
    if batch_size is not None:
        over["train.batch_size"] = batch_size
    if train_images is not None:
        over["data.subset_per_class"] = max(1, math.ceil(train_images / max(len(ckpt["class_names"]), 1)))
    return cfg.with_overrides(over, source="cnnkit prune")


def recover(cfg: Config, run_dir: Path, *, quiet: bool = True):
    """Train `cfg` into `run_dir` (created empty here): the engine's Run."""
    from cnnkit.training.trainer import train

    run_dir.mkdir(parents=True, exist_ok=False)
    return train(cfg, run_dir=run_dir, quiet=quiet)
