"""CNNs against a Vision Transformer at the same wall-clock budget on small data (issue 19).

Data: the CIFAR-10 JPEG copy in ../shared/datasets, `--per-class` training images per class
(the first by name; a tenth held out for validation) and `--test-per-class` test images per
class from CIFAR's test split, as an image folder (train/, test/) at its native 32 px.
Models (same settings for all: `train.time_budget` seconds of training incl. validation,
AdamW lr 2e-3, weight decay 0.05, one-cycle, batch 64, the standard augmentation preset for
the folder, fp32, `--threads` threads):

    fastnet_s                  cnnkit's fast CNN recipe (whitening stem, 32-128-128)
    resnet18 small_input       3x3 stride-1 stem, no max pool
    convnext_tiny small_input  4x4 stride-2 stem (the CNN designed as an answer to ViTs)
    vit_tiny                   timm VisionTransformer, patch 4: 64 tokens + class token
    vit_tiny_224               the same at 224 px, patch 16 (timm's vit_tiny_patch16_224 form): the 32 px
                               images upsampled to 224, 196 tokens; not in the default set (--models)

Reported: test accuracy of best.ckpt, MACs per image, parameters, training images per second
(epochs x training images / training seconds). Run in-process, one after the other.

    .venv/bin/python benchmarks/bench_cnn_vs_vit.py --budget 120      # the recorded run
    .venv/bin/python benchmarks/bench_cnn_vs_vit.py --full --budget 1800 --models fastnet_s resnet18 \
        convnext_tiny vit_tiny vit_tiny_224 --out benchmarks/results/bench_cnn_vs_vit_full   # all of CIFAR-10
    .venv/bin/python benchmarks/bench_cnn_vs_vit.py --budget 5 --per-class 3 --test-per-class 2 \
        --models fastnet_s vit_tiny_224 --out /tmp/bcv                                        # smoke test

Timings on a shared machine are contaminated: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_photos import TARBALL  # noqa: E402
from bench_train import write_results  # noqa: E402
from machine import machine_info  # noqa: E402

MODELS = {  # name: (registry name, model kwargs, input size)
    "fastnet_s": ("fastnet_s", {}, 32),
    "resnet18": ("resnet18", {"small_input": True}, 32),
    "convnext_tiny": ("convnext_tiny", {"small_input": True}, 32),
    "vit_tiny": ("vit_tiny", {}, 32),
    "vit_tiny_224": ("vit_tiny_224", {}, 224),
}
DEFAULT_MODELS = ["fastnet_s", "resnet18", "convnext_tiny", "vit_tiny"]


def build_folder(tarball: Path, dest: Path, train: int, test: int) -> dict:
    """dest/train/<class>/ and dest/test/<class>/: the first `train` / `test` JPEGs by name, as they are."""
    counts: dict[str, int] = {}
    with tarfile.open(tarball, "r:gz") as tf:
        members: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
        for m in tf.getmembers():
            parts = m.name.strip("./").split("/")
            if m.isfile() and len(parts) == 3 and parts[0] in ("train", "test"):
                members.setdefault((parts[0], parts[1]), []).append(m)
        for (split, cls), ms in sorted(members.items()):
            out = dest / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for m in sorted(ms, key=lambda m: m.name)[: train if split == "train" else test]:
                (out / Path(m.name).name).write_bytes(tf.extractfile(m).read())  # type: ignore[union-attr]
            counts[f"{split}/{cls}"] = len(list(out.iterdir()))
    return counts


def run_one(name: str, folder: Path, runs: Path, args) -> dict:
    from cnnkit.config import Config
    from cnnkit.models import create_model
    from cnnkit.models.summary import count_macs
    from cnnkit.training.trainer import train

    model, kwargs, size = MODELS[name]
    cfg = Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(folder),
            "data.image_size": size,
            "model.name": model,
            "model.kwargs": kwargs,
            "optim.name": "adamw",
            "optim.lr": 2e-3,
            "optim.weight_decay": 0.05,
            "train.recipe": "none",
            "train.time_budget": float(args.budget),
            "train.batch_size": 64,
            "runtime.num_threads": args.threads,
            "augment.preset": "standard",
            "run.runs_dir": str(runs),
            "run.name": name,
            "run.html_report": False,
        }
    )
    t0 = time.perf_counter()
    run = train(cfg, quiet=True, stream=io.StringIO())
    size_kw = {"image_size": size} if model.startswith("vit") else {}
    macs = count_macs(create_model(model, num_classes=10, in_chans=3, **kwargs, **size_kw), (3, size, size))
    n_train = run.summary["split_sizes"]["train"]
    secs = run.summary.get("train_seconds") or 0.0
    return {
        "model": name,
        "input_px": size,
        "test_accuracy": run.summary["test"]["accuracy"],
        "best_val_accuracy": run.summary["best_val_accuracy"],
        "epochs": len(run.metrics),
        "train_seconds": round(secs, 1),
        "wall_s": round(time.perf_counter() - t0, 1),
        "macs": macs,
        "params": sum(p.numel() for p in run.model.parameters()) if run.model is not None else None,
        "train_images": n_train,
        "images_per_s": round(len(run.metrics) * n_train / secs, 1) if n_train and secs else None,
    }


def markdown(r: dict) -> str:
    a = r["args"]
    lines = [
        f"# bench_cnn_vs_vit: CIFAR-10 JPEG, {a['per_class']} train / {a['test_per_class']} test images per class, "
        f"{a['budget']} s of training each, {a['threads']} threads",
        "",
        f"Load average before {r['load_before']}, after {r['load_after']} ({r['machine']['cores']} cores, "
        f"{r['machine']['model']}); timings contaminated when the load exceeds the cores.",
        "",
        "| model | test accuracy | best val accuracy | epochs | MACs / image | parameters | train images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in r["models"]:
        ips = f"{m['images_per_s']:.0f}" if m["images_per_s"] else "-"
        lines.append(
            f"| {m['model']}{' (224 px)' if m.get('input_px', 32) != 32 else ''} | {m['test_accuracy']:.2%} | {m['best_val_accuracy']:.2%} | {m['epochs']} | "
            f"{m['macs'] / 1e6:.1f} M | {m['params'] / 1e6:.2f} M | {ips} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=120, help="seconds of training per model")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    p.add_argument("--full", action="store_true", help="all of CIFAR-10: 5,000 train / 1,000 test images per class")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_cnn_vs_vit"))
    args = p.parse_args()
    if args.full:
        args.per_class, args.test_per_class = 5000, 1000
    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar"
        build_folder(TARBALL, folder, args.per_class, args.test_per_class)
        models = [run_one(name, folder, Path(tmp) / "runs", args) for name in args.models]
    results = {
        "args": vars(args),
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "models": models,
    }
    write_results(results, args.out, markdown)


if __name__ == "__main__":
    main()
