"""`cnnkit tune` at a fixed wall time (issue 19): the best network under a MAC budget found by
TPE with median pruning, against random search at the same wall time and against the
default model (`--model auto`: fastnet_t on 28 px digits) trained once with the same settings.

Data: mnist-mini (in the package), `--per-class` training images per class (a held-out tenth
validates, the 2,000 test images are only scored at the end of each trial and never steer the
search); or `--dataset cifar10-subset`: the CIFAR-10 JPEG copy in ../shared/datasets, the first
`--per-class` training and 100 test images per class (bench_cnn_vs_vit.build_folder).
Each trial trains `--epochs` epochs (batch `--batch-size`, 64: the recipe's 256 gives a 2,000-image
trial 8 steps an epoch, too few for any net but the default's whitened stem) with the dataset's recipe; the space is the spec
grammar (stages, depth, width, kernel, conv/res blocks, none/se/cbam) plus optim.lr, with
max_macs as the budget. Both searches get `--minutes` of wall time (checked between trials)
and the same seed.

    .venv/bin/python benchmarks/bench_tune.py --minutes 15          # the issue's setting
    .venv/bin/python benchmarks/bench_tune.py --minutes 15 --dataset cifar10-subset --per-class 100 --max-macs 20e6 \
        --out benchmarks/results/bench_tune_cifar
    .venv/bin/python benchmarks/bench_tune.py --minutes 0.3 --per-class 5 --epochs 1 --out /tmp/bt   # smoke test

The default model is trained once with the same data, epochs and threads; the table says
whether its MACs are within the budget (the comparison is fair only when they are).

Timings on a shared machine are contaminated: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_train import write_results  # noqa: E402
from machine import machine_info  # noqa: E402

SPACE = {
    "params": {"optim.lr": "loguniform(0.02, 0.5)"},
    "architecture": {
        "stages": "int(1, 3)",
        "depth": "int(1, 2)",
        "width": [8, 12, 16, 24],
        "kernel": [3, 5],
        "block": ["conv", "res"],
        "attention": ["none", "se", "cbam"],
    },
}


def base_config(args):
    from cnnkit.config import Config

    data = (
        {"data.dataset": "mnist-mini", "data.subset_per_class": args.per_class}
        if args.dataset == "mnist-mini"
        else {"data.dataset": "folder", "data.path": str(args.folder), "data.image_size": 32}
    )
    return Config().with_overrides(
        {
            **data,
            "train.epochs": args.epochs,
            "train.batch_size": args.batch_size,
            "runtime.num_threads": args.threads,
            "run.html_report": False,
        }
    )


def search(args, sampler: str, pruner: str, out: Path) -> dict:
    from cnnkit.search.space import space_from_dict
    from cnnkit.search.study import run_study

    space = space_from_dict(
        {**SPACE, "sampler": sampler, "pruner": pruner, "seed": args.seed, "max_macs": args.max_macs}
    )
    t0 = time.perf_counter()
    res = run_study(space, base_config(args), out, timeout=args.minutes * 60, stream=io.StringIO())
    states = [t.state.name for t in res.trials]
    b = res.best
    return {
        "sampler": sampler,
        "pruner": pruner,
        "wall_s": round(time.perf_counter() - t0, 1),
        "trials": len(states),
        "complete": states.count("COMPLETE"),
        "pruned_by_accuracy": sum("pruned_at_epoch" in t.user_attrs for t in res.trials),
        "over_mac_limit": sum("skipped" in t.user_attrs for t in res.trials),
        "best_val_accuracy": b.values[0] if b else None,
        "best_test_accuracy": b.user_attrs.get("test_accuracy") if b else None,
        "best_macs": b.user_attrs["macs"] if b else None,
        "best_params": b.user_attrs["params"] if b else None,
        "best_spec": b.user_attrs["overrides"]["model.name"] if b else None,
        "best_lr": b.params.get("optim.lr") if b else None,
        "max_macs_of_trained": max((t.user_attrs["macs"] for t in res.trials if t.state.name == "COMPLETE"), default=0),
    }


def default_model(args, out: Path) -> dict:
    from cnnkit.search.study import _Macs
    from cnnkit.training.trainer import train

    t0 = time.perf_counter()
    cfg = base_config(args).with_overrides({"run.runs_dir": str(out), "run.name": "default"})
    run = train(cfg, quiet=True, stream=io.StringIO())
    macs, _params = _Macs(cfg)(run.config)  # as the search counts its trials' (the run's resolved model)
    return {
        "model": run.config.model.name,
        "wall_s": round(time.perf_counter() - t0, 1),
        "val_accuracy": run.summary["best_val_accuracy"],
        "test_accuracy": run.summary["test"]["accuracy"],
        "macs": macs,
        "within_budget": macs <= args.max_macs,
    }


def markdown(r: dict) -> str:
    a = r["args"]
    lines = [
        f"# bench_tune: {a['minutes']} min per search, {a['dataset']} {a['per_class']}/class, {a['epochs']} epochs per trial, batch {a.get('batch_size', 'recipe')}, "
        f"max_macs {a['max_macs']:,.0f}",
        "",
        f"Load average before {r['load_before']}, after {r['load_after']} ({r['machine']['cores']} cores, "
        f"{r['machine']['model']}); timings contaminated when the load exceeds the cores.",
        "",
        "| arm | trials (complete / pruned by accuracy / over MACs) | best val acc | its test acc | its MACs | spec |",
        "|---|---|---|---|---|---|",
    ]
    d = r["default"]
    lines.append(
        f"| default ({d['model']}), one run | 1 | {d['val_accuracy']:.2%} | {d['test_accuracy']:.2%} | {d['macs']:,} "
        f"({'within' if d.get('within_budget', True) else 'OVER'} the budget) | - |"
    )
    for s in r["searches"]:
        if s["best_val_accuracy"] is None:
            lines.append(f"| {s['sampler']} + {s['pruner']} | {s['trials']} | - | - | - | - |")
            continue
        lines.append(
            f"| {s['sampler']} + {s['pruner']} pruner | {s['trials']} ({s['complete']} / {s['pruned_by_accuracy']} / "
            f"{s['over_mac_limit']}) | {s['best_val_accuracy']:.2%} | {s['best_test_accuracy']:.2%} | "
            f"{s['best_macs']:,} | `{s['best_spec']}` (lr {s['best_lr']:.3g}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=15)
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="for every arm (the recipe's 256 leaves a 2,000-image trial ~8 steps an epoch)",
    )
    p.add_argument("--max-macs", type=float, default=5e6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", choices=["mnist-mini", "cifar10-subset"], default="mnist-mini")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_tune"))
    args = p.parse_args()
    import os

    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        if args.dataset == "cifar10-subset":
            from bench_cnn_vs_vit import build_folder
            from bench_photos import TARBALL

            args.folder = Path(tmp) / "cifar"
            build_folder(TARBALL, args.folder, args.per_class, 100)
        results = {
            "args": vars(args),
            "machine": {k: v for k, v in machine_info().items() if k != "flags"},
            "load_before": load_before,
            "default": default_model(args, Path(tmp)),
            "searches": [
                search(args, "tpe", "median", Path(tmp) / "tpe"),
                search(args, "random", "none", Path(tmp) / "random"),
            ],
            "load_after": [round(v, 2) for v in os.getloadavg()],
        }
    results["args"].pop("folder", None)  # a temporary path
    write_results(results, args.out, markdown)


if __name__ == "__main__":
    main()
