"""Speed to accuracy on the full MNIST: wall-clock training time until the test accuracy
first reaches 99.0 %, cnnkit's fast MNIST recipe against the textbook PyTorch recipe,
measured in the same run on the same cores.

- cnnkit: `cnnkit train --dataset mnist` as it is, i.e. the dataset's default recipe
  (`cnnkit recipes --show mnist-fast`): fastnet_t (conv-pool-BN-GELU stages 16-32-64, a
  3x3 grid head; 2.3 MMACs), one epoch of SGD Nesterov with a one-cycle schedule (peak lr
  0.2), batch 128, label smoothing 0.1, +-2 px shifts, channels-last, bf16 autocast where
  the CPU has it (precision auto); run through `cnnkit.training.trainer.train`, which writes
  a complete run folder. The time is the run's `train_seconds` (training plus the per-epoch
  validation pass and checkpoint); three seeds. `cnnkit-fp32` is the same with --precision fp32.
- textbook: the official PyTorch MNIST example (two 3x3 convs 32/64, max-pool, dropout
  0.25, 128-unit FC, dropout 0.5; Adadelta lr 1.0, StepLR gamma 0.7, batch 64) with a
  plain shuffling DataLoader.

Both read the same MNIST (cnnkit's loader on the IDX files in the data root, 54,000 train
images after the 10 % validation hold-out, the 10,000 test images). The test split is
evaluated after every epoch outside the timed region (cnnkit's recipe has one epoch). Timings are noisy when other
processes share the CPU: the load average is recorded.

    .venv/bin/python benchmarks/bench_mnist.py --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import time_to_target, write_results

RESULTS = Path(__file__).resolve().parent / "results"


def run_cnnkit(data_root: str, target: float, seed: int, precision: str | None = None) -> dict:
    """`cnnkit train --dataset mnist --data-root ROOT --seed SEED` through the library."""
    import tempfile

    from cnnkit.config import Config
    from cnnkit.training.trainer import train

    overrides = {"data.dataset": "mnist", "data.root": data_root, "data.download": False, "train.seed": seed}
    if precision:
        overrides["runtime.precision"] = precision
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-mnist-") as tmp:
        run = train(Config().with_overrides({**overrides, "run.runs_dir": tmp, "run.html_report": False}), quiet=True)
    s = run.summary
    acc = s["test"]["accuracy"]
    curve = [{"epoch": r["epoch"], "seconds": None, "val_accuracy": r["val_accuracy"]} for r in run.metrics]
    return {
        "curve": curve,
        "seconds_to_target": s["train_seconds"] if acc >= target else None,
        "final_accuracy": acc,
        "train_seconds": s["train_seconds"],
        "recipe": dict(
            {
                "model": run.config.model.name,
                "epochs": run.config.train.epochs,
                "batch_size": run.config.train.batch_size,
                "lr": run.config.optim.lr,
                "precision": run.config.runtime.precision,
            }.items()
        ),
        "images_per_second": s["images_per_second"],
    }


def run_textbook(data, epochs: int, target: float, seed: int = 0) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(9216, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )
    norm = lambda x: (x.float() / 255 - 0.1307) / 0.3081  # noqa: E731  (the example's constants)
    loader = DataLoader(
        TensorDataset(norm(data.train.images), data.train.labels),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    opt = torch.optim.Adadelta(net.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    test_x = norm(data.test.images)

    def train_epoch() -> None:
        net.train()
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
        sched.step()

    @torch.no_grad()
    def test_accuracy() -> float:
        net.eval()
        return sum(
            int((net(test_x[i : i + 1000]).argmax(1) == data.test.labels[i : i + 1000]).sum())
            for i in range(0, len(test_x), 1000)
        ) / len(test_x)

    return time_to_target(train_epoch, test_accuracy, epochs, target)


def markdown(r: dict) -> str:
    t = f"{100 * r['target']:.1f} %"
    lines = [
        f"# Speed to accuracy: full MNIST, test accuracy >= {t}",
        "",
        f"{r['date']}, {r['machine']}, torch {r['torch']}, {r['threads']} threads; load average before/after: {r['load_before']} / {r['load_after']}.",
        "",
        f"| recipe | seed | seconds to {t} | epochs | test accuracy at the last epoch run |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in r["recipes"].items():
        for seed, run in runs.items():
            s = f"{run['seconds_to_target']:.1f}" if run["seconds_to_target"] is not None else "not reached"
            lines.append(f"| {name} | {seed} | {s} | {len(run['curve'])} | {100 * run['final_accuracy']:.2f} % |")
    lines += [""]
    for name, med in r["median_seconds_to_target"].items():
        lines.append(f"- {name}: median {f'{med:.1f} s' if med is not None else 'not reached in every seed'}")
    lines += [
        "",
        f"cnnkit recipe (resolved from `cnnkit train --dataset mnist`): {json.dumps(r.get('cnnkit_recipe'))}.",
        "",
        "Command: `" + r["command"] + "`",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("CNNKIT_DATA", "../shared/datasets"))
    p.add_argument(
        "--textbook-epochs", type=int, default=2, help="at most this many textbook epochs (about 50 s each on 2 cores)"
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument(
        "--recipes", nargs="+", default=["cnnkit", "textbook"], choices=["cnnkit", "cnnkit-fp32", "textbook"]
    )
    p.add_argument("--out", default=str(RESULTS / "bench_mnist"))
    args = p.parse_args(argv)

    import torch

    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    data = build_dataset(DataConfig(dataset="mnist", root=args.data_root, download=False), seed=0)
    r = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "target": args.target,
        "command": " ".join(
            [".venv/bin/python", "benchmarks/bench_mnist.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "recipes": {},
    }
    for name in args.recipes:
        runs = {}
        for seed in args.seeds if name != "textbook" else args.seeds[:1]:
            if name == "textbook":
                run = run_textbook(data, args.textbook_epochs, args.target, seed)
            else:
                run = run_cnnkit(args.data_root, args.target, seed, precision="fp32" if name == "cnnkit-fp32" else None)
                r["cnnkit_recipe"] = run["recipe"]
            runs[str(seed)] = run
            print(
                f"{name} seed {seed}: {run['seconds_to_target']} s to target, final {run['final_accuracy']:.4f}",
                flush=True,
            )
        r["recipes"][name] = runs
    r["median_seconds_to_target"] = {
        name: (
            statistics.median(x["seconds_to_target"] for x in runs.values())
            if all(x["seconds_to_target"] is not None for x in runs.values())
            else None
        )
        for name, runs in r["recipes"].items()
    }
    r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    write_results(r, args.out, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
