"""U-Net on ISBI-2012 membranes (the U-Net paper's data) through `cnnkit.train`, against two
baselines on the same validation slices: every pixel "cell" (the majority class) and Otsu's
threshold (dark = membrane; the threshold from the training slices' histogram).

The data: `isbi2012-membrane` from the data root (slices 0-19 train, 20-24 validation; no test
split, so the validation numbers also chose the epoch: optimistic by a little). For CPU time the
512x512 slices are resized to --size (default 256: membranes stay 1-3 px wide), images bilinear,
masks nearest. Numbers: pixel accuracy, mean IoU and membrane IoU on the 5 validation slices from
best.ckpt, seconds of training, and the load average before and after (timings on a shared,
busy machine are contaminated by the other processes: compare accuracy, not seconds).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_segment.py --data-root ../shared/datasets
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


def otsu_threshold(pixels: np.ndarray) -> int:
    """The 8-bit threshold maximising the between-class variance (Otsu 1979)."""
    hist = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    omega, mu = np.cumsum(p), np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.clip(omega * (1 - omega), 1e-12, None)
    return int(np.argmax(between))


def baselines(data) -> dict:
    from cnnkit.tasks.segment.metrics import confusion, from_confusion

    names, labels = data.class_names, data.val.labels
    cell = torch.full_like(labels, names.index("cell"))
    t = otsu_threshold(data.train.images.numpy())
    otsu = (data.val.images[:, 0] > t).long()  # brighter than the threshold: cell (1); darker: membrane (0)
    out = {}
    for name, pred in (("all cell", cell), (f"Otsu (threshold {t})", otsu)):
        m = from_confusion(confusion(pred, labels, len(names)), names)
        out[name] = {
            "pixel_accuracy": m["pixel_accuracy"],
            "miou": m["miou"],
            "membrane_iou": m["per_class"]["membrane"]["iou"],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("CNNKIT_DATA", "../shared/datasets"))
    ap.add_argument("--size", type=int, default=256, help="resize the slices to this side (0: their own 512 px)")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", default=str(RESULTS / "bench_segment"))
    args = ap.parse_args()

    from cnnkit import train
    from cnnkit.config import Config
    from cnnkit.data import build_dataset

    overrides = {
        "data.dataset": "isbi2012-membrane",
        "data.root": args.data_root,
        "data.image_size": args.size or None,
        "model.name": "unet",
        "model.kwargs": {"width": args.width, "depth": args.depth},
        "optim.name": "adamw",
        "optim.lr": args.lr,
        "optim.weight_decay": 1e-4,
        "optim.label_smoothing": 0.0,
        "augment.translate": 0,
        "augment.hflip": True,
        "augment.vflip": True,
        "augment.rotate": 15.0,
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "eval.batch_size": 5,
        "train.recipe": "none",
        "run.html_report": True,
    }
    load_before = os.getloadavg()
    cfg = Config().with_overrides(overrides, source="bench_segment")
    data = build_dataset(cfg.data)
    base = baselines(data)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.with_overrides({"run.runs_dir": tmp, "run.name": "isbi"}, source="bench_segment")
        run = train(cfg, quiet=True)
        final = json.loads((run.dir / "val_metrics.json").read_text())
        rows = run.metrics
    wall = time.perf_counter() - t0
    results = {
        "benchmark": "bench_segment",
        "command": "PYTHONPATH=src python benchmarks/bench_segment.py " + " ".join(sys.argv[1:]),
        "config": overrides,
        "unet": {
            "pixel_accuracy": final["pixel_accuracy"],
            "miou": final["miou"],
            "membrane_iou": final["per_class"]["membrane"]["iou"],
            "dice": final["dice"],
            "best_epoch": run.summary["best_epoch"],
            "parameters": run.summary["parameters"],
            "train_seconds": run.summary["train_seconds"],
            "wall_seconds": round(wall, 1),
            "val_pixel_accuracy_per_epoch": [round(r["val_accuracy"], 4) for r in rows],
        },
        "baselines": base,
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    write_results(results, args.out, markdown)


def markdown(r: dict) -> str:
    u, c = r["unet"], r["config"]
    lines = [
        "# bench_segment: U-Net on ISBI-2012 membranes (CPU)",
        "",
        f"`{r['command']}`",
        "",
        f"20 training / 5 validation slices at {c['data.image_size'] or 512} px; U-Net width {c['model.kwargs']['width']}, "
        f"depth {c['model.kwargs']['depth']} ({u['parameters']:,} parameters), {c['train.epochs']} epochs, AdamW lr {c['optim.lr']}, "
        "flips and rotations applied to image and mask together. Validation numbers from best.ckpt; the validation slices "
        "also chose the epoch (no test split), so they are slightly optimistic.",
        "",
        "| method | pixel accuracy | mean IoU | membrane IoU |",
        "|---|---:|---:|---:|",
        f"| U-Net (best epoch {u['best_epoch']}) | {u['pixel_accuracy']:.4f} | {u['miou']:.4f} | {u['membrane_iou']:.4f} |",
    ]
    lines += [
        f"| {name} | {b['pixel_accuracy']:.4f} | {b['miou']:.4f} | {b['membrane_iou']:.4f} |"
        for name, b in r["baselines"].items()
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
