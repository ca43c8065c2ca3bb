"""U-Net on ISBI-2012 membranes (the U-Net paper's data) through `cnnkit.train`, against two
baselines on the same validation slices: every pixel "cell" (the majority class) and Otsu's
threshold (dark = membrane; the threshold from the training slices' histogram).

The data: `isbi2012-membrane` from the data root (slices 0-19 train, 20-24 validation; no test
split, so the validation numbers also chose the epoch: optimistic by a little). By default the
512x512 slices are used as they are (--size N resizes them: images bilinear, masks nearest), with a
width-16 U-Net trained for 560 s under bf16 autocast where the CPU computes it natively and scored with
flip TTA: the setting measured to reach 0.92 pixel accuracy in under 10 minutes. Numbers: pixel accuracy, mean IoU and membrane IoU on the 5 validation slices from
best.ckpt, seconds of training, and the load average before and after (timings on a shared,
busy machine are contaminated by the other processes: compare accuracy, not seconds).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_segment.py --data-root ../shared/datasets

--dataset mnist-scenes: the generated scenes (data/scenes.py; 64 px, background + 10 digits) scored on their
test split by mean IoU, against "all background" and "ink = the commonest digit". --model unet_lite0
[--pretrained], --loss / --class-weights / --border-weight / --tta: the variants (segment.* keys, eval.tta).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_results
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
# Per dataset, the flags left out. ISBI's: the measured setting that reaches the aim (0.92 validation pixel
# accuracy in under 10 minutes on 2 idle AMX cores, bench_segment_512_w16_bf16*.md): the slices at their own 512 px,
# width 16, bf16 autocast where the CPU computes it natively (precision auto), 560 s of training, flip TTA.
ISBI_DEFAULTS = {"size": 0, "width": 16, "epochs": 200, "time_budget": 560.0, "precision": "auto", "tta": "flip"}
SCENES_DEFAULTS = {"size": 0, "width": 8, "epochs": 40, "time_budget": 0.0, "precision": "fp32", "tta": "none"}


def otsu_threshold(pixels: np.ndarray) -> int:
    """The 8-bit threshold maximising the between-class variance (Otsu 1979)."""
    hist = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    omega, mu = np.cumsum(p), np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.clip(omega * (1 - omega), 1e-12, None)
    return int(np.argmax(between))


def _scores(pred: torch.Tensor, labels: torch.Tensor, names: list[str]) -> dict:
    from cnnkit.tasks.segment.metrics import confusion, from_confusion

    m = from_confusion(confusion(pred, labels, len(names)), names)
    out = {"pixel_accuracy": m["pixel_accuracy"], "miou": m["miou"]}
    if "membrane" in names:
        out["membrane_iou"] = m["per_class"]["membrane"]["iou"]
    return out


def baselines(data, split) -> dict:
    """ISBI: every pixel "cell", and Otsu's threshold. mnist-scenes: every pixel background, and "ink is the
    most frequent digit" (pixels >= 128 labelled with the train masks' commonest digit class)."""
    names, labels = data.class_names, split.labels
    if "cell" in names:
        t = otsu_threshold(data.train.images.numpy())
        preds = {
            "all cell": torch.full_like(labels, names.index("cell")),
            f"Otsu (threshold {t})": (split.images[:, 0] > t).long(),  # brighter: cell (1); darker: membrane (0)
        }
    else:
        counts = torch.bincount(data.train.labels.flatten().clamp_max(len(names)), minlength=len(names) + 1)
        digit = int(counts[1 : len(names)].argmax()) + 1
        preds = {
            "all background": torch.zeros_like(labels),
            f"ink = commonest digit ({names[digit]})": (split.images[:, 0] >= 128).long() * digit,
        }
    return {name: _scores(pred, labels, names) for name, pred in preds.items()}


def overrides_for(args) -> dict:
    common = {
        "data.root": args.data_root,
        "model.name": args.model,
        "optim.name": "adamw",
        "optim.lr": args.lr,
        "optim.weight_decay": 1e-4,
        "optim.label_smoothing": 0.0,
        "augment.translate": 0,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.recipe": "none",
        "segment.loss": args.loss,
        "segment.class_weights": args.class_weights,
        "segment.border_weight": args.border_weight,
        "eval.tta": args.tta,
        "runtime.precision": args.precision,
        "run.html_report": True,
    }
    if args.model == "unet":
        common["model.kwargs"] = {"width": args.width, "depth": args.depth}
    if args.pretrained:
        common["model.pretrained"] = True
    if args.time_budget:
        common["train.time_budget"] = args.time_budget
    if args.ema:
        common["train.ema_decay"] = args.ema
    if args.dataset == "isbi2012-membrane":
        return {
            **common,
            "data.dataset": "isbi2012-membrane",
            "data.image_size": args.size or None,
            "augment.hflip": True,
            "augment.vflip": True,
            "augment.rotate": 15.0,
            "augment.elastic": args.elastic,
            "eval.batch_size": 5,
        }
    return {**common, "data.dataset": "mnist-scenes", "data.task": "segment", "eval.batch_size": 200}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", choices=("isbi2012-membrane", "mnist-scenes"), default="isbi2012-membrane")
    ap.add_argument("--data-root", default=os.environ.get("CNNKIT_DATA", "../shared/datasets"))
    ap.add_argument("--size", type=int, help="ISBI: resize the slices to this side (0, the default: their own 512 px)")
    ap.add_argument("--model", choices=("unet", "unet_lite0"), default="unet")
    ap.add_argument("--pretrained", action="store_true", help="unet_lite0: the package's ImageNet encoder weights")
    ap.add_argument("--width", type=int, help="U-Net width (default: 16 for ISBI, 8 for mnist-scenes)")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--epochs", type=int, help="default: 200 for ISBI (the time budget ends it), 40 for mnist-scenes")
    ap.add_argument(
        "--time-budget",
        type=float,
        help="seconds of training (0: --epochs decides; default: 560 for ISBI, 0 for scenes)",
    )
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--loss", choices=("ce", "dice", "ce+dice"), default="ce")
    ap.add_argument("--class-weights", default="none", help="none | auto | a list, e.g. 2,1")
    ap.add_argument("--border-weight", type=float, default=0.0, help="U-Net paper's w0 (10); 0: off")
    ap.add_argument("--tta", choices=("none", "flip", "d4"), help="default: flip for ISBI, none for mnist-scenes")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--elastic", type=float, default=0.0, help="augment.elastic: px std on a 3x3 grid (paper: 10)")
    ap.add_argument("--ema", type=float, default=0.0, help="train.ema_decay: also score an EMA of the weights (0: off)")
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        help="runtime.precision (default: auto for ISBI, fp32 for scenes)",
    )
    ap.add_argument("--out", default=None, help="results stem (default: results/bench_segment[_scenes])")
    args = ap.parse_args()
    for key, value in (ISBI_DEFAULTS if args.dataset == "isbi2012-membrane" else SCENES_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or str(
        RESULTS / ("bench_segment" if args.dataset == "isbi2012-membrane" else "bench_segment_scenes")
    )

    from cnnkit import train
    from cnnkit.config import Config
    from cnnkit.data import build_dataset

    overrides = overrides_for(args)
    load_before = os.getloadavg()
    cfg = Config().with_overrides(overrides, source="bench_segment")
    data = build_dataset(cfg.data)
    scored = data.test if data.test is not None else data.val
    base = baselines(data, scored)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.with_overrides({"run.runs_dir": tmp, "run.name": "seg"}, source="bench_segment")
        run = train(cfg, quiet=True)
        split = "test" if data.test is not None else "val"
        final = json.loads((run.dir / f"{split}_metrics.json").read_text())
        rows = run.metrics
    wall = time.perf_counter() - t0
    model = {"dice": final["dice"], **_scores_from(final)}
    model.update(
        best_epoch=run.summary["best_epoch"],
        parameters=run.summary["parameters"],
        train_seconds=run.summary["train_seconds"],
        wall_seconds=round(wall, 1),
        val_pixel_accuracy_per_epoch=[round(r["val_accuracy"], 4) for r in rows],
    )
    if args.ema:  # the EMA's weights saved with best.ckpt, scored like the raw ones
        model["ema"] = run.summary[f"{split}_ema"]
        model["val_pixel_accuracy_per_epoch_ema"] = [round(r["val_accuracy_ema"], 4) for r in rows]
    results = {
        "benchmark": "bench_segment",
        "command": "PYTHONPATH=src python benchmarks/bench_segment.py " + " ".join(sys.argv[1:]),
        "dataset": args.dataset,
        "data_source": getattr(data, "source", None),  # mnist-scenes: the full MNIST, or the bundled mnist-mini
        "split": split,
        "config": overrides,
        "unet": model,
        "baselines": base,
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    write_results(results, out, markdown)


def _scores_from(final: dict) -> dict:
    out = {"pixel_accuracy": final["pixel_accuracy"], "miou": final["miou"]}
    if "membrane" in final["per_class"]:
        out["membrane_iou"] = final["per_class"]["membrane"]["iou"]
    return out


def _model_words(c: dict, u: dict) -> str:
    if c["model.name"] == "unet":
        what = f"U-Net width {c['model.kwargs']['width']}, depth {c['model.kwargs']['depth']}"
    else:
        what = "U-Net on EfficientNet-Lite0" + (
            " (ImageNet encoder)" if c.get("model.pretrained") else " (from scratch)"
        )
    loss = c.get("segment.loss", "ce")
    extra = [f"class weights {c['segment.class_weights']}"] if c.get("segment.class_weights", "none") != "none" else []
    extra += [f"border weight w0={c['segment.border_weight']:g}"] if c.get("segment.border_weight") else []
    extra += [f"TTA {c['eval.tta']}"] if c.get("eval.tta", "none") != "none" else []
    extra += [f"elastic {c['augment.elastic']:g} px"] if c.get("augment.elastic") else []
    extra += [f"EMA of the weights {c['train.ema_decay']:g}"] if c.get("train.ema_decay") else []
    extra += [f"precision {c['runtime.precision']}"] if c.get("runtime.precision", "fp32") != "fp32" else []
    return f"{what} ({u['parameters']:,} parameters), loss {loss}" + "".join(f", {e}" for e in extra)


def markdown(r: dict) -> str:
    u, c = r["unet"], r["config"]
    scenes = r.get("dataset") == "mnist-scenes"
    split = r.get("split", "val")
    if scenes:
        head = [
            "# bench_segment: U-Net on mnist-scenes (CPU)",
            f"1,800 training / 200 validation / 400 test scenes of 64 px (background + 10 digit classes); "
            f"{_model_words(c, u)}, {c['train.epochs']} epochs"
            + (f" or {c['train.time_budget']:.0f} s" if c.get("train.time_budget") else "")
            + f", AdamW lr {c['optim.lr']}. Test numbers from best.ckpt (the epoch chosen on validation). "
            f"Digits from {r.get('data_source') or 'MNIST'}.",
        ]
    else:
        head = [
            "# bench_segment: U-Net on ISBI-2012 membranes (CPU)",
            f"20 training / 5 validation slices at {c['data.image_size'] or 512} px; {_model_words(c, u)}, "
            f"{c['train.epochs']} epochs, AdamW lr {c['optim.lr']}, flips and rotations applied to image and mask "
            "together. Validation numbers from best.ckpt; the validation slices also chose the epoch (no test split), "
            "so they are slightly optimistic.",
        ]
    third = "membrane IoU" if not scenes else "Dice"
    lines = [
        head[0],
        "",
        f"`{r['command']}`",
        "",
        head[1],
        "",
        f"| method ({split}) | pixel accuracy | mean IoU | {third} |",
    ]
    lines += ["|---|---:|---:|---:|"]
    name = "U-Net" if c["model.name"] == "unet" else "U-Net / Lite0"
    third_of = (lambda m: m.get("dice", float("nan"))) if scenes else (lambda m: m["membrane_iou"])
    lines.append(
        f"| {name} (best epoch {u['best_epoch']}) | {u['pixel_accuracy']:.4f} | {u['miou']:.4f} | {third_of(u):.4f} |"
    )
    if "ema" in u:  # the EMA's headline: pixel accuracy and mean IoU (no per-class IoU)
        e = u["ema"]
        lines.append(f"| {name}, EMA of the weights (same checkpoint) | {e['accuracy']:.4f} | {e['miou']:.4f} | - |")
    lines += [
        f"| {n} | {b['pixel_accuracy']:.4f} | {b['miou']:.4f} | "
        + (f"{b['membrane_iou']:.4f} |" if not scenes else "- |")
        for n, b in r["baselines"].items()
    ]
    lines += [
        "",
        f"Training {u['train_seconds']:.0f} s ({u['wall_seconds']:.0f} s wall with data loading and the report) on "
        f"{r['machine']['model']} ({r['machine']['cores']} cores, {r['threads']} threads), load average "
        f"{r['load_before']} before, {r['load_after']} after: the machine was shared with other jobs, so the seconds are "
        "contaminated and only indicative; the accuracies are not affected.",
        "",
        f"Validation pixel accuracy per epoch: {', '.join(f'{v:.3f}' for v in u['val_pixel_accuracy_per_epoch'])}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
