"""Evaluate a checkpoint on a dataset split."""

from __future__ import annotations

import dataclasses
import os

from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from cnnkit.config import Config
from cnnkit.data import build_dataset
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.errors import DataError
from cnnkit.evaluate.metrics import classification_metrics
from cnnkit.training.device import resolve_device
from cnnkit.training.loop import predict_logits


def _align_classes(split: Split, data_classes: list[str], model_classes: list[str]) -> Split:
    """Relabel `split` from the dataset's class order to the model's; class sets must match."""
    if data_classes == model_classes:
        return split
    if sorted(data_classes) != sorted(model_classes):
        missing = sorted(set(data_classes) - set(model_classes))
        raise DataError(f"the data has classes the model does not know: {missing}; the model was trained on {model_classes}")
    import torch

    mapping = torch.tensor([model_classes.index(c) for c in data_classes])
    return Split(split.images, mapping[split.labels], split.paths)


def evaluate_checkpoint(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    data: str | None = None,
    data_root: str | None = None,
    split: str = "test",
    batch_size: int = 500,
    device: str = "cpu",
) -> dict:
    """Metrics of the checkpoint (or run folder) at `path` on a split of its own dataset,
    or of the dataset / image folder given. Returns the metrics dict (see classification_metrics)."""
    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    cfg = Config.from_dict(ckpt["config"], source=f"{ckpt_path} (stored config)")
    data_cfg = cfg.data
    if data is not None:
        data_cfg = dataclasses.replace(data_cfg, dataset="folder", path=data)
    elif dataset is not None:
        data_cfg = dataclasses.replace(data_cfg, dataset=dataset, path=None)
    if data_root is not None:
        data_cfg = dataclasses.replace(data_cfg, root=data_root)
    if data_cfg.dataset == "folder":
        data_cfg = dataclasses.replace(data_cfg, channels=ckpt["input"]["channels"], image_size=ckpt["input"]["size"][0])
    ds = build_dataset(data_cfg, seed=cfg.train.seed)
    if ds.channels != ckpt["input"]["channels"] or list(ds.image_size) != list(ckpt["input"]["size"]):
        raise DataError(
            f"{ds.name} images are {ds.channels}x{ds.image_size[0]}x{ds.image_size[1]} but the model expects "
            f"{ckpt['input']['channels']}x{ckpt['input']['size'][0]}x{ckpt['input']['size'][1]}"
        )
    target = _align_classes(ds.split(split), ds.class_names, ckpt["class_names"])
    dev = resolve_device(device)
    model = model_from_checkpoint(ckpt).to(dev)
    normalize = Normalize(ckpt["input"]["mean"], ckpt["input"]["std"], dev)
    logits = predict_logits(model, target, normalize=normalize, batch_size=batch_size)
    result = classification_metrics(logits, target.labels, ckpt["class_names"])
    result.update({"checkpoint": str(ckpt_path), "dataset": ds.name, "split": split})
    return result
