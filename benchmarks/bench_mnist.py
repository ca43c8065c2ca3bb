"""Speed to accuracy on the full MNIST: wall-clock training time until the test accuracy
first reaches 99.0 %, cnnkit's fast MNIST recipe against the textbook PyTorch recipe,
measured in the same run on the same cores.

- cnnkit: the default `simple_cnn` (73 k parameters), SGD Nesterov with a one-cycle schedule
  over ONE epoch (peak lr 0.2), label smoothing 0.1, +-2 px shifts, channels-last, batch 128, run with
  cnnkit's own loop functions (benchmarks/bench_train.py `run_cnnkit`); three seeds.
- textbook: the official PyTorch MNIST example (two 3x3 convs 32/64, max-pool, dropout
  0.25, 128-unit FC, dropout 0.5; Adadelta lr 1.0, StepLR gamma 0.7, batch 64) with a
  plain shuffling DataLoader.

Both read the same MNIST tensors (cnnkit's loader on the IDX files in the data root, 54,000
train images after the 10 % validation hold-out, the 10,000 test images). The test split is
evaluated after every epoch outside the timed region. Timings are noisy when other
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
from bench_train import run_cnnkit, time_to_target  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FAST_RECIPE = {"train.batch_size": 128, "optim.lr": 0.2}


def run_textbook(data, epochs: int, target: float, seed: int = 0) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )
    norm = lambda x: (x.float() / 255 - 0.1307) / 0.3081  # noqa: E731  (the example's constants)
    loader = DataLoader(TensorDataset(norm(data.train.images), data.train.labels), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
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
        return sum(int((net(test_x[i : i + 1000]).argmax(1) == data.test.labels[i : i + 1000]).sum()) for i in range(0, len(test_x), 1000)) / len(test_x)

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
        lines.append(f"- {name}: median {'%.1f s' % med if med is not None else 'not reached in every seed'}")
    lines += ["", f"cnnkit recipe: {json.dumps(r['cnnkit_recipe'])}, {r['cnnkit_epochs']} epochs in the one-cycle schedule.", "", "Command: `" + r["command"] + "`", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("CNNKIT_DATA", "../shared/datasets"))
    p.add_argument("--epochs", type=int, default=1, help="epochs of cnnkit's schedule (it stops once the target is reached)")
    p.add_argument("--textbook-epochs", type=int, default=2, help="at most this many textbook epochs (about 50 s each on 2 cores)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--recipes", nargs="+", default=["cnnkit", "textbook"], choices=["cnnkit", "cnnkit-bf16", "textbook"])
    p.add_argument("--out", default=str(RESULTS / "bench_mnist"))
    args = p.parse_args(argv)

    import torch

    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    data = build_dataset(DataConfig(dataset="mnist", root=args.data_root, download=False), seed=0)
    r = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "target": args.target, "cnnkit_recipe": FAST_RECIPE,
        "cnnkit_epochs": args.epochs, "command": " ".join([".venv/bin/python", "benchmarks/bench_mnist.py", *(argv if argv is not None else sys.argv[1:])]),
        "load_before": [round(v, 2) for v in os.getloadavg()], "recipes": {},
    }
    for name in args.recipes:
        runs = {}
        for seed in args.seeds if name != "textbook" else args.seeds[:1]:
            if name == "textbook":
                run = run_textbook(data, args.textbook_epochs, args.target, seed)
            else:
                prec = "bf16" if name == "cnnkit-bf16" else "fp32"
                run = run_cnnkit(args.epochs, args.target, precision=prec, data=data, overrides={**FAST_RECIPE, "train.seed": seed})
            runs[str(seed)] = run
            print(f"{name} seed {seed}: {run['seconds_to_target']} s to target, final {run['final_accuracy']:.4f}", flush=True)
        r["recipes"][name] = runs
    r["median_seconds_to_target"] = {
        name: (statistics.median(x["seconds_to_target"] for x in runs.values()) if all(x["seconds_to_target"] is not None for x in runs.values()) else None)
        for name, runs in r["recipes"].items()
    }
    r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(r, indent=2))
    out.with_suffix(".md").write_text(markdown(r))
    print(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
