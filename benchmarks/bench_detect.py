"""Object detection on mnist-scenes (issue 17): the tiny Faster R-CNN and the one-stage FCOS, each trained
by `cnnkit train --task detect`'s loop (tasks/detect/train.py) for a fixed number of epochs under a time
budget, scored on the test scenes (test digits, never seen in training) from best.ckpt: mAP@0.5,
mAP@[.5:.95], per-class AP@0.5 and seconds per image at inference (batches of 32, CPU).

The baseline: connected components of the thresholded image (pixels >= 128, 8-connected; digits never
touch in these scenes) as boxes, scored by their area, labelled with the commonest training digit; and the
same boxes with each one's true class (an oracle that shows how much of the task is finding vs naming).

The data: mnist-scenes generated from the full MNIST under --data-root (64x64 canvases with 1-5 digits;
--scenes training scenes, of which 10% validation, and --test test scenes). Timings on a shared machine
are contaminated by the other processes: the load average is recorded before and after.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_detect.py --data-root ../shared/datasets
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
MODELS = ("fasterrcnn_tiny", "fcos_tiny")


def component_boxes(image: np.ndarray) -> torch.Tensor:
    """(K, 4) xyxy boxes (pixel edges) of the 8-connected components of pixels >= 128 of a (H, W) image."""
    from scipy import ndimage

    labelled, _ = ndimage.label(image >= 128, structure=np.ones((3, 3)))
    boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndimage.find_objects(labelled) if s is not None]
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


def baseline(data) -> dict:
    """mAP of the component boxes labelled with the commonest training digit, and with their true class."""
    from scipy import ndimage  # noqa: F401  (imported before the clock starts)
    from torchvision.ops import box_iou

    from cnnkit.tasks.detect.metrics import score_detections

    common = int(torch.cat(data.train.labels).bincount().argmax())
    majority, oracle = [], []
    t0 = time.perf_counter()
    for i in range(len(data.test)):
        boxes = component_boxes(data.test.images[i, 0].numpy())
        scores = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / 64**2
        majority.append({"boxes": boxes, "scores": scores, "labels": torch.full((len(boxes),), common)})
        truth = data.test.boxes[i]
        best = box_iou(boxes, truth).argmax(1) if len(truth) and len(boxes) else torch.zeros(len(boxes), dtype=int)
        labels = data.test.labels[i][best] if len(truth) else torch.zeros(len(boxes), dtype=torch.long)
        oracle.append({"boxes": boxes, "scores": scores, "labels": labels})
    seconds = (time.perf_counter() - t0) / len(data.test)
    out = {}
    for name, preds in ((f"components, class {common} (commonest)", majority), ("components, true class", oracle)):
        r = score_detections(preds, data.test, data.class_names)
        out[name] = {"map_50": r["map_50"], "map": r["map"], "seconds_per_image": round(seconds, 5)}
    return out


def run_model(name: str, args: argparse.Namespace, data, runs_dir: str) -> dict:
    from cnnkit.config import Config
    from cnnkit.tasks.detect.train import train_detection

    overrides = {
        "data.dataset": "mnist-scenes",
        "data.root": args.data_root,
        "model.name": name,
        "model.kwargs": {"width": args.width},
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.time_budget": args.budget,
        "run.runs_dir": runs_dir,
        "run.name": name,
        "run.html_report": False,
    }
    cfg = Config().with_overrides(overrides, source="bench_detect")
    t0 = time.perf_counter()
    run = train_detection(cfg, data=data, quiet=args.quiet)
    wall = time.perf_counter() - t0
    s = json.loads((run / "summary.json").read_text())
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    col = rows[0].index("val_map_50")
    ckpt = torch.load(run / "best.ckpt", weights_only=True)
    return {
        "map_50": s["map_50"],
        "map": s["map"],
        "mar_100": s["mar_100"],
        "ap50_per_class": s["ap50_per_class"],
        "seconds_per_image": s["seconds_per_image"],
        "train_seconds": s["train_seconds"],
        "wall_seconds": round(wall, 1),
        "epochs_done": len(rows) - 1,
        "parameters": sum(
            v.numel() for k, v in ckpt["state_dict"].items() if "running" not in k and "num_batches" not in k
        ),
        "val_map_50_per_epoch": [float(r[col]) for r in rows[1:]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("CNNKIT_DATA", "../shared/datasets"))
    ap.add_argument("--scenes", type=int, default=2000, help="training scenes (10%% of them validation)")
    ap.add_argument("--test", type=int, default=400, help="test scenes (from the MNIST test digits)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--budget", type=float, default=900.0, help="seconds of training per model (stops after the epoch)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "bench_detect"))
    args = ap.parse_args()

    from cnnkit.config import DataConfig
    from cnnkit.data.scenes import build_scenes_detection

    load_before = os.getloadavg()
    data = build_scenes_detection(
        DataConfig(dataset="mnist-scenes", root=args.data_root), {"train": args.scenes, "test": args.test}
    )
    results = {
        "benchmark": "bench_detect",
        "command": "PYTHONPATH=src python benchmarks/bench_detect.py " + " ".join(sys.argv[1:]),
        "data": {"source": data.source, "train": len(data.train), "val": len(data.val), "test": len(data.test)},
        "settings": {k: getattr(args, k) for k in ("epochs", "budget", "width", "batch_size")},
        "baselines": baseline(data),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            results["models"][name] = run_model(name, args, data, tmp)
    results |= {
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    write_results(results, args.out, markdown)


def markdown(r: dict) -> str:
    d, s = r["data"], r["settings"]
    lines = [
        "# bench_detect: object detection on mnist-scenes (CPU)",
        "",
        f"`{r['command']}`",
        "",
        f"{d['train']} training / {d['val']} validation / {d['test']} test scenes of 64x64 ({d['source']}); each model "
        f"trained for {s['epochs']} epochs (at most {s['budget']:.0f} s: stops after the epoch that passes it), "
        f"batch {s['batch_size']}, AdamW 1e-3 with warm-up and cosine decay, backbone width {s['width']}; test "
        "numbers from best.ckpt (best validation mAP@0.5).",
        "",
        "| method | test mAP@0.5 | test mAP@[.5:.95] | ms / image | training s | epochs | parameters |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in r["models"].items():
        lines.append(
            f"| {name} | {m['map_50']:.4f} | {m['map']:.4f} | {m['seconds_per_image'] * 1000:.1f} | "
            f"{m['train_seconds']:.0f} | {m['epochs_done']} | {m['parameters']:,} |"
        )
    for name, b in r["baselines"].items():
        lines.append(
            f"| baseline: {name} | {b['map_50']:.4f} | {b['map']:.4f} | {b['seconds_per_image'] * 1000:.1f} | - | - | - |"
        )
    lines += ["", "Per-class test AP@0.5:", "", "| model | " + " | ".join(str(c) for c in range(10)) + " |"]
    lines.append("|---|" + "---:|" * 10)
    for name, m in r["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in m["ap50_per_class"].values()) + " |")
    lines += [
        "",
        "Validation mAP@0.5 per epoch: "
        + "; ".join(f"{n}: {', '.join(f'{v:.3f}' for v in m['val_map_50_per_epoch'])}" for n, m in r["models"].items())
        + ".",
        "",
        f"On {r['machine']['model']} ({r['machine']['cores']} cores, {r['threads']} threads, {r['machine']['simd']}), "
        f"load average {r['load_before']} before, {r['load_after']} after: on a shared machine the seconds are "
        "contaminated and only indicative; the mAPs are not affected.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
