"""Recovery fine-tuning after pruning, through the ordinary training engine (`cnnkit.training.train`).

The pruned model is saved as `pruned.ckpt` (a normal cnnkit checkpoint with its `pruning` entry);
the parent run's stored config (its recipe already expanded: data, augmentation, optimiser,
schedule, precision) trains it again with `model.weights` naming that file, so the engine rebuilds
the pruned widths (models/structure.py), and its checkpoints carry them too. The recovery run is an
ordinary run folder, `<pruned run>/recovery/`: bf16 / the schedule / checkpoints / Ctrl-C and
`cnnkit train --resume <pruned run>/recovery` behave as for any run; running the same `cnnkit prune`
again after an interruption continues that recovery run (its pruned.ckpt is kept) and then
writes the pruned run's best.ckpt and prune.json.
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
        "train.time_limit": 0.0,
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


def unfinished(run_dir: Path) -> bool:
    """Whether `run_dir` holds a recovery run that was interrupted (its last.ckpt not marked finished)."""
    import torch

    last = run_dir / "last.ckpt"
    if not last.is_file():
        return False
    state = torch.load(last, map_location="cpu", weights_only=True).get("train_state")
    return isinstance(state, dict) and not state.get("finished")


def recover(cfg: Config, run_dir: Path, *, quiet: bool = True):
    """Train `cfg` into `run_dir` (created empty here), or continue it when an earlier recovery there was
    interrupted: the engine's Run. A finished recovery folder is not overwritten."""
    from cnnkit.training.trainer import train

    if unfinished(run_dir):
        return train(resume=run_dir, quiet=quiet)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise CnnkitError(
            f"{run_dir}: a finished recovery run is already here; give cnnkit prune another --out, or remove the folder"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return train(cfg, run_dir=run_dir, quiet=quiet)
