"""Speed to accuracy on mnist-mini: wall-clock training time until the test accuracy first
reaches the target (98 % by default), cnnkit's default recipe against baselines measured in
the same run on the same cores.

Recipes (all train the default model, `fastnet_t`, on the same mnist-mini images, batch 64, seed 0):

- cnnkit: the default `cnnkit train` recipe (SGD Nesterov lr 0.2, one-cycle, label smoothing
  0.1, +-2 px shifts, channels-last, fp32, 8 epochs), built from cnnkit's own loop functions;
- cnnkit-bf16: the same with bf16 autocast;
- textbook: a plain PyTorch loop: float tensors in a TensorDataset, a shuffling DataLoader,
  Adam lr 1e-3, constant rate, no augmentation, no label smoothing, contiguous NCHW, 8 epochs.

The test split is evaluated after every epoch, outside the timed region; each recipe stops at
the first epoch that reaches the target (--full trains all epochs). Timings are noisy
when other processes share the CPU: the load average is written with the results.

    .venv/bin/python benchmarks/bench_train.py                  # all recipes
    .venv/bin/python benchmarks/bench_train.py --recipes cnnkit textbook --epochs 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_MODEL = "fastnet_t"  # what `cnnkit train` trains on mnist-mini (its recipe); every recipe here trains it


def _data():
    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    return build_dataset(DataConfig(), seed=0)


def _test_accuracy(model, data, normalize) -> float:
    from cnnkit.training.loop import evaluate

    return evaluate(model, data.test, normalize=normalize)["accuracy"]


def time_to_target(train_epoch, test_accuracy, epochs: int, target: float, stop_at_target: bool = True) -> dict:
    """Run `train_epoch()` up to `epochs` times, timing only it; `test_accuracy()` after each
    epoch (untimed). Returns the accuracy curve and the training seconds until `target`."""
    curve, elapsed, reached = [], 0.0, None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        train_epoch()
        elapsed += time.perf_counter() - t0
        acc = test_accuracy()
        curve.append({"epoch": epoch, "seconds": round(elapsed, 2), "test_accuracy": acc})
        if reached is None and acc >= target:
            reached = elapsed
            if stop_at_target:
                break
    return {
        "curve": curve,
        "seconds_to_target": reached,
        "final_accuracy": curve[-1]["test_accuracy"],
        "train_seconds": elapsed,
    }


def write_results(results: dict, out: str | Path, markdown) -> None:
    """`out`.json and `out`.md (the `markdown(results)` table), and the table on stdout."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


def run_cnnkit(
    epochs: int,
    target: float,
    precision: str = "fp32",
    stop_at_target: bool = True,
    data=None,
    overrides: dict | None = None,
) -> dict:
    """cnnkit's loop functions with the config's recipe (defaults: the mnist-mini one);
    `data` (a cnnkit Dataset) and `overrides` (dotted config keys) let other benchmarks reuse it."""
    import torch

    from cnnkit.config import Config
    from cnnkit.data.augment import BatchAugment
    from cnnkit.data.preprocess import Normalize, num_batches
    from cnnkit.device import seed_everything
    from cnnkit.models import create_model
    from cnnkit.training.loop import train_one_epoch
    from cnnkit.training.optim import build_optimizer, build_scheduler
    from cnnkit.training.recipes import apply_recipe
    from cnnkit.training.trainer import resolve_auto_model

    cfg = apply_recipe(
        Config().with_overrides({"train.epochs": epochs, "runtime.precision": precision, **(overrides or {})})
    )
    data = data if data is not None else _data()
    cfg = resolve_auto_model(cfg, data)
    gen = seed_everything(cfg.train.seed)
    model = create_model(cfg.model.name, num_classes=data.num_classes, in_chans=data.channels, **cfg.model.kwargs).to(
        memory_format=torch.channels_last
    )
    opt = build_optimizer(model, cfg.optim)
    steps = num_batches(len(data.train), cfg.train.batch_size, drop_last=True)
    sched = build_scheduler(opt, cfg.schedule, epochs * steps, steps)
    norm = Normalize(data.mean, data.std, "cpu", channels_last=True)
    aug = BatchAugment(translate=cfg.augment.translate)
    return time_to_target(
        lambda: train_one_epoch(
            model,
            data.train,
            optimizer=opt,
            scheduler=sched,
            normalize=norm,
            batch_size=cfg.train.batch_size,
            generator=gen,
            augment=aug,
            label_smoothing=cfg.optim.label_smoothing,
            precision=precision,
        ),
        lambda: _test_accuracy(model, data, norm),
        epochs,
        target,
        stop_at_target,
    )


def run_textbook(epochs: int, target: float, stop_at_target: bool = True) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from cnnkit.data.preprocess import Normalize
    from cnnkit.models import create_model

    data = _data()
    torch.manual_seed(0)
    mean, std = data.mean[0], data.std[0]
    x = (data.train.images.float() / 255 - mean) / std
    loader = DataLoader(
        TensorDataset(x, data.train.labels), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    model = create_model(DEFAULT_MODEL, num_classes=data.num_classes, in_chans=data.channels)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    norm = Normalize(data.mean, data.std, "cpu")

    def train_epoch() -> None:
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    return time_to_target(train_epoch, lambda: _test_accuracy(model, data, norm), epochs, target, stop_at_target)


RECIPES = {
    "cnnkit": lambda epochs, target, stop: run_cnnkit(epochs, target, stop_at_target=stop),
    "cnnkit-bf16": lambda epochs, target, stop: run_cnnkit(epochs, target, precision="bf16", stop_at_target=stop),
    "textbook": lambda epochs, target, stop: run_textbook(epochs, target, stop_at_target=stop),
}


def markdown(results: dict) -> str:
    target = results["target"]
    lines = [
        f"# Speed to accuracy: mnist-mini, test accuracy >= {100 * target:.0f} %",
        "",
        f"{results['date']}, {results['machine']}, torch {results['torch']}, {results['threads']} threads; "
        f"load average before/after: {results['load_before']} / {results['load_after']} (other processes shared the CPU: timings are noisy).",
        "",
        f"| recipe | seconds to {100 * target:.0f} % | epochs to {100 * target:.0f} % | test accuracy at the last epoch run | training seconds (epochs run) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results["recipes"].items():
        ep = next((c["epoch"] for c in r["curve"] if c["test_accuracy"] >= target), None)
        s = f"{r['seconds_to_target']:.1f}" if r["seconds_to_target"] is not None else "not reached"
        lines.append(
            f"| {name} | {s} | {ep or '-'} | {100 * r['final_accuracy']:.2f} % | {r['train_seconds']:.1f} ({len(r['curve'])}) |"
        )
    lines += ["", "Command: `" + results["command"] + "`", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--target", type=float, default=0.98)
    p.add_argument(
        "--full", action="store_true", help="train all --epochs even after the target is reached (default: stop there)"
    )
    p.add_argument("--out", default=str(RESULTS / "bench_train"), help="path stem for .json and .md")
    args = p.parse_args(argv)

    import torch

    load_before = [round(v, 2) for v in os.getloadavg()]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "target": args.target,
        "epochs": args.epochs,
        "command": " ".join(
            [".venv/bin/python", "benchmarks/bench_train.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "load_before": load_before,
        "recipes": {},
    }
    for name in args.recipes:
        print(f"{name}...", flush=True)
        r = RECIPES[name](args.epochs, args.target, not args.full)
        results["recipes"][name] = r
        print(
            f"  {name}: {r['seconds_to_target'] if r['seconds_to_target'] is not None else 'not reached'} s to target; final {r['final_accuracy']:.4f}",
            flush=True,
        )
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    write_results(results, args.out, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
