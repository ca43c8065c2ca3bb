"""CIFAR-10 in a fixed training budget (10 minutes by default) on this machine's cores:
cnnkit's CIFAR recipe against a textbook Keras-style CNN, in the same run.

- cnnkit: `cnnkit train --data <cifar10 jpg folder> --image-size 32 --recipe cifar-fast`
  through `cnnkit.training.trainer.train` (`cnnkit recipes --show cifar-fast`): fastnet_s
  with a whitening stem, Nesterov SGD with a triangular schedule, 64x batch-norm rates,
  lookahead, label smoothing 0.2, alternating flips and 2 px shifts, progressive resizing
  (24 px growing to 32 px by 60 % of the epochs), bf16 where the CPU has it, flip+shift
  test-time augmentation. The run is given `train.time_budget` (what
  `cnnkit train --time-budget` sets): the trainer plans its steps from the measured speed
  and re-plans after every epoch, so the schedule ends on the budget. That budget is the
  benchmark's budget less the time already spent and the final evaluation, whose cost a
  short calibration measures (counted too). The budget covers everything after the
  decode-once cache is built: calibration, training, the per-epoch validation, the final
  TTA evaluation, checkpoints and the run folder.
- textbook: the Keras example CNN (conv 32-32, pool, conv 64-64, pool, dropout 0.25, dense
  512, dropout 0.5), Adam lr 1e-3, batch 64, random crop (4 px padding) and flip from
  `torchvision.transforms.v2`, `ImageFolder` + `DataLoader` with 2 workers decoding the
  JPEGs, trained until the budget (less a final evaluation) is spent.

Both train on the same 49,000 images (2 % of train held out as cnnkit's validation split;
the textbook uses all 50,000) and are scored on the 10,000 test images.

    .venv/bin/python benchmarks/bench_cifar.py                 # extracts ../shared/datasets/cifar10-jpg.tar.gz to a temp dir
    .venv/bin/python benchmarks/bench_cifar.py --data /tmp/cifar --budget 600
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_results

RESULTS = Path(__file__).resolve().parent / "results"
TARBALL = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def cnnkit_config(
    data: Path,
    runs_dir: str,
    epochs: int | None = None,
    seed: int = 0,
    extra: dict | None = None,
    time_budget: float | None = None,
):
    from cnnkit.config import Config

    over = {
        "data.dataset": "folder",
        "data.path": str(data),
        "data.image_size": 32,
        "data.val_fraction": 0.02,
        "train.recipe": "cifar-fast",
        "train.seed": seed,
        "run.runs_dir": runs_dir,
        **(extra or {}),
    }
    if epochs is not None:
        over["train.epochs"] = epochs
    if time_budget is not None:
        over["train.time_budget"] = time_budget
    return Config().with_overrides(over)


def calibrate(cfg, steps: int = 6) -> dict:
    """Seconds per training step and per evaluated image of the recipe's network, measured here."""
    import torch
    import torch.nn.functional as F

    from cnnkit.device import autocast, resolve_precision
    from cnnkit.models import create_model
    from cnnkit.training.recipes import apply_recipe

    cfg = apply_recipe(cfg)
    prec = resolve_precision(cfg.runtime.precision, torch.device("cpu"))
    model = create_model(cfg.model.name, num_classes=10, in_chans=3).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.85, nesterov=True)
    x = torch.randn(cfg.train.batch_size, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (len(x),))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with autocast(torch.device("cpu"), prec):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad(), autocast(torch.device("cpu"), prec):
        model(torch.randn(500, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    eval_image = (time.perf_counter() - t0) / 500
    step = sorted(times[2:])[len(times[2:]) // 2]  # median after warm-up
    return {
        "seconds_per_step": step,
        "seconds_per_eval_image": eval_image,
        "batch_size": cfg.train.batch_size,
        "precision": prec,
    }


def run_cnnkit(
    data: Path,
    budget: float,
    seed: int = 0,
    epochs: int | None = None,
    extra: dict | None = None,
    keep_runs: str | None = None,
) -> dict:
    from cnnkit.training.trainer import train

    t0 = time.perf_counter()
    with (
        contextlib.nullcontext(keep_runs)
        if keep_runs
        else tempfile.TemporaryDirectory(prefix="cnnkit-bench-cifar-") as runs
    ):
        cal = calibrate(cnnkit_config(data, runs, seed=seed, extra=extra))
        n_test = 10_000
        # after training: the test set x 6 views (flip+shift TTA), x 1.2, and 20 s for loading the
        # cache, the whitening init, the best checkpoint, plots and report
        final_s = 1.2 * 6 * n_test * cal["seconds_per_eval_image"] + 20
        time_budget = None if epochs else round(budget - (time.perf_counter() - t0) - final_s, 1)
        run = train(
            cnnkit_config(data, runs, epochs=epochs, seed=seed, time_budget=time_budget, extra=extra), quiet=True
        )
        total = time.perf_counter() - t0
        s = run.summary
        return {
            "test_accuracy": s["test"]["accuracy"],
            "epochs": round(s["steps"] / (s["split_sizes"]["train"] // run.config.train.batch_size), 2),
            "steps": s["steps"],
            "time_budget": time_budget,
            "calibration": cal,
            "train_seconds": s["train_seconds"],
            "seconds_in_budget": round(total, 1),
            "within_budget": total <= budget,
            "images_per_second": s["images_per_second"],
            "val_accuracy_per_epoch": [round(r["val_accuracy"], 4) for r in run.metrics],
            "tta": s["tta"],
            "recipe": {
                "model": run.config.model.name,
                "batch_size": run.config.train.batch_size,
                "lr": run.config.optim.lr,
                "precision": run.config.runtime.precision,
                "progressive_resize": run.config.train.progressive_resize,
                "progressive_end": run.config.train.progressive_end,
                "alternate_flip": run.config.augment.alternate_flip,
                "overrides": extra or {},
            },
        }


def run_textbook(data: Path, budget: float, seed: int = 0, workers: int = 2) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    torch.manual_seed(seed)
    norm = v2.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    train_tf = v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomCrop(32, padding=4),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            norm,
        ]
    )
    test_tf = v2.Compose([v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), norm])
    train_set = datasets.ImageFolder(data / "train", transform=train_tf)
    test_set = datasets.ImageFolder(data / "test", transform=test_tf)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(64 * 6 * 6, 512),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(512, 10),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = DataLoader(
        train_set,
        batch_size=64,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
    test_loader = DataLoader(test_set, batch_size=500, num_workers=workers)
    t0 = time.perf_counter()
    reserve = 25.0  # seconds kept for the final test pass
    epochs, images, done = 0.0, 0, False
    while not done:
        net.train()
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
            images += len(xb)
            if time.perf_counter() - t0 > budget - reserve:
                done = True
                break
        epochs = images / len(train_set)
    train_s = time.perf_counter() - t0
    net.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in test_loader:
            correct += int((net(xb).argmax(1) == yb).sum())
    total = time.perf_counter() - t0
    return {
        "test_accuracy": correct / len(test_set),
        "epochs": round(epochs, 2),
        "train_seconds": round(train_s, 1),
        "seconds_in_budget": round(total, 1),
        "within_budget": total <= budget,
        "images_per_second": round(images / train_s, 1),
    }


def extract(tarball: Path, out: Path) -> float:
    t0 = time.perf_counter()
    with tarfile.open(tarball) as tar:
        tar.extractall(out, filter="data")
    return time.perf_counter() - t0


def build_cache(data: Path) -> float:
    """Decode the folder once into cnnkit's cache (outside the budget, reported)."""
    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    t0 = time.perf_counter()
    build_dataset(DataConfig(dataset="folder", path=str(data), image_size=32, val_fraction=0.02), seed=0)
    return time.perf_counter() - t0


def markdown(r: dict) -> str:
    b = r["budget_s"]
    lines = [
        f"# CIFAR-10 in {b / 60:.0f} minutes of training on {r['threads']} CPU threads",
        "",
        f"{r['date']}, {r['machine']}, torch {r['torch']}; load average before/after: {r['load_before']} / {r['load_after']}. "
        f"Cache build (once, outside the budget): {r['cache_build_s']:.1f} s.",
        "",
        "| recipe | test accuracy | epochs | training s | s in budget | images/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, x in r["recipes"].items():
        lines.append(
            f"| {name} | {100 * x['test_accuracy']:.2f} % | {x['epochs']} | {x['train_seconds']:.0f} | {x['seconds_in_budget']:.0f} | {x['images_per_second']:.0f} |"
        )
    if "cnnkit" in r["recipes"]:
        c = r["recipes"]["cnnkit"]
        lines += [
            "",
            f"cnnkit recipe: {json.dumps(c['recipe'])}, TTA {c['tta']}; train.time_budget {c.get('time_budget')} s "
            f"({c.get('steps')} steps planned by the trainer); calibration {json.dumps(c['calibration'])}; "
            f"validation accuracy per epoch {c['val_accuracy_per_epoch']}.",
        ]
    lines += ["", "Command: `" + r["command"] + "`", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data", help="an extracted CIFAR-10 JPEG folder (train/, test/); default: extract the tarball to a temp dir"
    )
    p.add_argument("--tarball", default=str(TARBALL))
    p.add_argument(
        "--budget", type=float, default=600.0, help="seconds for everything after the cache is built (default 600)"
    )
    p.add_argument("--recipes", nargs="+", default=["cnnkit", "textbook"], choices=["cnnkit", "textbook"])
    p.add_argument("--epochs", type=int, help="cnnkit: train this many epochs instead of fitting them to the budget")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="cnnkit: a config key over the recipe (repeatable), e.g. train.progressive_resize=0.5",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--keep-runs",
        metavar="DIR",
        help="cnnkit: write its run folder under DIR and keep it (default: a temp dir, deleted)",
    )
    p.add_argument("--out", default=str(RESULTS / "bench_cifar"))
    args = p.parse_args(argv)

    import torch

    from cnnkit.config import parse_value

    extra = {k: parse_value(v) for k, _, v in (item.partition("=") for item in args.set)}
    with tempfile.TemporaryDirectory(prefix="cnnkit-cifar-") as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "cifar10"
        if not args.data:
            extract(Path(args.tarball), data)
            inner = [d for d in data.iterdir() if d.is_dir()]
            data = inner[0] if len(inner) == 1 and not (data / "train").is_dir() else data
        os.environ.setdefault("CNNKIT_CACHE", str(Path(tmp) / "cache"))
        r = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "budget_s": args.budget,
            "command": " ".join(
                [".venv/bin/python", "benchmarks/bench_cifar.py", *(argv if argv is not None else sys.argv[1:])]
            ),
            "load_before": [round(v, 2) for v in os.getloadavg()],
            "cache_build_s": build_cache(data),
            "recipes": {},
        }
        for name in args.recipes:
            print(f"{name}...", flush=True)
            x = (
                run_cnnkit(data, args.budget, args.seed, args.epochs, extra, args.keep_runs)
                if name == "cnnkit"
                else run_textbook(data, args.budget, args.seed)
            )
            r["recipes"][name] = x
            print(
                f"  {name}: {100 * x['test_accuracy']:.2f} % in {x['seconds_in_budget']} s ({x['epochs']} epochs)",
                flush=True,
            )
        r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    write_results(r, args.out, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
