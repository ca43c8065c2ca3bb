"""Evaluate a checkpoint on a dataset split."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from cnnkit.config import Config
from cnnkit.data import build_dataset
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.device import resolve_device
from cnnkit.errors import ConfigError, DataError
from cnnkit.evaluate.metrics import classification_metrics, hardest_examples, multilabel_metrics
from cnnkit.evaluate.predict import predict_logits

# Other tasks score a split with their own code, in a module named here and imported on use (like
# report.html's EXTRA_SECTIONS; the tasks sit above evaluate): `segment_metrics`, `write_samples`, `format_metrics`.
TASK_MODULES = {"segment": "cnnkit.tasks.segment.evaluation", "detect": "cnnkit.tasks.detect.evaluation"}


def task_module(task: str):
    """The evaluation module of a task other than classification (TASK_MODULES)."""
    import importlib

    return importlib.import_module(TASK_MODULES[task])


def _align_classes(split: Split, data_classes: list[str], model_classes: list[str]) -> Split:
    """Relabel `split` from the dataset's class order to the model's; class sets must match."""
    if data_classes == model_classes:
        return split
    if sorted(data_classes) != sorted(model_classes):
        missing = sorted(set(data_classes) - set(model_classes))
        raise DataError(
            f"the data has classes the model does not know: {missing}; the model was trained on {model_classes}"
        )
    mapping = torch.tensor([model_classes.index(c) for c in data_classes])
    if split.labels.ndim == 2:  # multi-hot rows: move each column to the model's class position
        labels = torch.zeros_like(split.labels)
        labels[:, mapping] = split.labels
        return Split(split.images, labels, split.paths)
    return Split(split.images, mapping[split.labels], split.paths)


@dataclass
class Predictions:
    """A checkpoint's logits on one split, with what they were computed from."""

    checkpoint_path: Path
    checkpoint: dict
    dataset: str
    split_name: str
    split: Split  # labels in the model's class order
    logits: torch.Tensor  # (N, classes), float32, CPU
    model: torch.nn.Module
    normalize: Normalize
    note: str | None = None  # what the number means when the split was chosen for the user (validation: optimistic)

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint["class_names"])


def predict_split(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    data: str | None = None,
    data_root: str | None = None,
    split: str | None = None,
    batch_size: int = 500,
    device: str = "cpu",
    tta: str = "none",
) -> Predictions:
    """Logits of the checkpoint (or run folder) at `path` on a split of its own dataset, or of
    the dataset / image folder given. `tta`: none, flip or flip+shift (softmax averaged over views).
    `split` None: test, or the validation split when there is no test split (with a `note` saying
    that number is optimistic: the same split chose the best epoch)."""
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
        data_cfg = dataclasses.replace(
            data_cfg, channels=ckpt["input"]["channels"], image_size=ckpt["input"]["size"][0]
        )
    ds = build_dataset(data_cfg, seed=cfg.train.seed)
    if ds.channels != ckpt["input"]["channels"] or list(ds.image_size) != list(ckpt["input"]["size"]):
        raise DataError(
            f"{ds.name} images are {ds.channels}x{ds.image_size[0]}x{ds.image_size[1]} but the model expects "
            f"{ckpt['input']['channels']}x{ckpt['input']['size'][0]}x{ckpt['input']['size'][1]}"
        )
    note = None
    if split is None:
        from cnnkit.evaluate.caveats import selection_note

        split = "test" if ds.test is not None else "val"
        note = (
            selection_note(split) if data is None and dataset is None else None
        )  # other data did not choose the epoch
    target = _align_classes(ds.split(split), ds.class_names, ckpt["class_names"])
    dev = resolve_device(device)
    model = model_from_checkpoint(ckpt).to(dev)
    normalize = Normalize(ckpt["input"]["mean"], ckpt["input"]["std"], dev)
    if ckpt.get("task") == "segment" and tta != "none":  # views mapped back (tasks/segment/tiling.py)
        segment = task_module("segment")
        if tta not in segment.TTA_MODES:
            raise ConfigError(f"--tta {tta}: segmentation models support --tta flip or d4 (or none)")
        logits = segment.predict_log_probs(model, target, normalize=normalize, batch_size=batch_size, tta=tta)
        return Predictions(ckpt_path, ckpt, ds.name, split, target, logits, model, normalize, note)
    logits = predict_logits(
        model,
        target,
        normalize=normalize,
        batch_size=batch_size,
        tta=tta,
        multi_label=ckpt.get("task") == "multi_label",
    )
    return Predictions(ckpt_path, ckpt, ds.name, split, target, logits, model, normalize, note)


def evaluate_predictions(p: Predictions, hardest: int = 16) -> dict:
    """The metrics dict (see classification_metrics; multilabel_metrics for multi-hot labels)
    plus the hardest examples, the checkpoint, dataset and split. A multi-label model on
    single-label data (a class folder, say) is scored as multi-label with one label per image."""
    labels = p.split.labels
    if labels.ndim == 3:  # masks: segmentation metrics (tasks/segment/metrics.py)
        result = task_module("segment").segment_metrics(p.logits, labels, p.class_names)
        result.update({"checkpoint": str(p.checkpoint_path), "dataset": p.dataset, "split": p.split_name})
        return result
    if labels.ndim == 1 and p.checkpoint.get("task") == "multi_label":
        labels = torch.nn.functional.one_hot(labels, len(p.class_names)).float()
    if labels.ndim == 2:
        result = multilabel_metrics(p.logits, labels, p.class_names)
        result.update({"checkpoint": str(p.checkpoint_path), "dataset": p.dataset, "split": p.split_name})
        return result
    result = classification_metrics(p.logits, p.split.labels, p.class_names)
    result["hardest"] = hardest_examples(p.logits, p.split.labels, hardest)
    if p.split.paths is not None:
        for h in result["hardest"]:
            h["path"] = p.split.paths[h["index"]]
    result.update({"checkpoint": str(p.checkpoint_path), "dataset": p.dataset, "split": p.split_name})
    return result


def evaluate_checkpoint(
    path: str | os.PathLike,
    *,
    dataset: str | None = None,
    data: str | None = None,
    data_root: str | None = None,
    split: str | None = None,
    batch_size: int = 500,
    device: str = "cpu",
    tta: str = "none",
    plots: str | os.PathLike | Callable[[str], str | os.PathLike] | None = None,
) -> dict:
    """Metrics of the checkpoint (or run folder) at `path` on a split of its own dataset,
    or of the dataset / image folder given. Returns the metrics dict (see classification_metrics).
    With `plots`, also writes into that folder: the row-normalised confusion matrix (PNG and
    JSON), the reliability diagram, the hardest-examples gallery and metrics.json (`plots` may be
    a function of the split's name). `split` None: as in predict_split."""
    detect = task_module("detect")
    if detect.is_detect_checkpoint(path):  # boxes, not logits: mAP, PR curves, drawn boxes (tasks/detect)
        return dict(
            detect.evaluate_detection(path, split=split, device=device, plots=plots, other_data=bool(data or dataset))
        )
    p = predict_split(
        path,
        dataset=dataset,
        data=data,
        data_root=data_root,
        split=split,
        batch_size=batch_size,
        device=device,
        tta=tta,
    )
    result = evaluate_predictions(p)
    if p.note:
        result["note"] = p.note
    if result.get("calibration"):  # over- or under-confident, and whether label smoothing explains it
        from cnnkit.evaluate.caveats import calibration_note

        smoothing = float(p.checkpoint.get("config", {}).get("optim", {}).get("label_smoothing", 0.0) or 0.0)
        note = calibration_note(result, smoothing)
        if note:
            result["calibration_note"] = note
    if tta != "none":
        result["tta"] = tta
    if callable(plots):  # a folder that depends on the split chosen (split None)
        plots = plots(p.split_name)
    if plots is not None:
        result["files"] = [str(f) for f in write_evaluation(result, p, plots)]
    return result


PLOTS_HINT = "or write them elsewhere with --plots DIR (or skip them with --no-plots)"


def write_evaluation(result: dict, p: Predictions, out_dir: str | os.PathLike) -> list[Path]:
    """PNGs and JSON of an evaluation, into `out_dir`, as one set: built in a hidden folder beside it
    and moved in at the end, so a full disk or a signal leaves the previous set (or none), never
    half of one; an OSError becomes an OutputError naming the folder. Returns the files written."""
    from cnnkit.io_safety import staged_folder

    out = Path(out_dir)
    with staged_folder(out, hint=PLOTS_HINT) as stage:
        files = _write_evaluation_files(result, p, stage)
    return [out / f.name for f in files]


def _write_evaluation_files(result: dict, p: Predictions, out: Path) -> list[Path]:
    from cnnkit.evaluate.plots import plot_confusion_matrix, plot_hardest_examples, plot_reliability_diagram

    if result.get("task") == "multilabel":  # no confusion matrix or top-1 calibration for several labels
        from cnnkit.evaluate.plots import plot_per_class

        bars = out / "per_class.png"
        plot_per_class(result, bars, title=f"Per-class AP and F1 ({result['dataset']} {result['split']})")
        metrics = out / "metrics.json"
        metrics.write_text(json.dumps(result, indent=2))
        return [bars, metrics]
    names = result["class_names"]
    where = f"{result['dataset']} {result['split']}"
    if result.get("task") == "segment":  # the pixel confusion matrix, the best / worst images, metrics.json
        write_samples = task_module("segment").write_samples
        cm_png, sheet, metrics = out / "confusion_matrix.png", out / "samples.png", out / "metrics.json"
        plot_confusion_matrix(result["confusion_matrix"], names, cm_png, title=f"Pixel confusion matrix ({where})")
        if write_samples(sheet, p.split, p.logits.argmax(1), result):
            result["samples"]["file"] = sheet.name
        metrics.write_text(json.dumps(result, indent=2))
        return [cm_png, sheet, metrics]
    cm_json = out / "confusion_matrix.json"
    cm_json.write_text(
        json.dumps(
            {
                "class_names": names,
                "rows": "true class",
                "columns": "predicted class",
                "counts": result["confusion_matrix"],
                "normalized": result["confusion_matrix_normalized"],
            },
            indent=1,
        )
    )
    cm_png = out / "confusion_matrix.png"
    plot_confusion_matrix(
        result["confusion_matrix"], names, cm_png, title=f"Confusion matrix, row-normalised ({where})", normalized=True
    )
    rel = out / "reliability_diagram.png"
    plot_reliability_diagram(result["calibration"], result["ece"], rel, title=f"Calibration ({where})")
    hard = out / "hardest_examples.png"
    items = result["hardest"]
    images = p.split.images[[h["index"] for h in items]] if items else p.split.images[:0]
    captions = [
        f"true {names[h['true']]}, pred {names[h['predicted']]}\np(pred) {h['probability_predicted']:.0%}, loss {h['loss']:.2f}"
        for h in items
    ]
    plot_hardest_examples(images, captions, hard, title=f"Hardest examples (highest loss), {where}")
    metrics = out / "metrics.json"
    metrics.write_text(json.dumps(result, indent=2))
    return [cm_png, cm_json, rel, hard, metrics]
