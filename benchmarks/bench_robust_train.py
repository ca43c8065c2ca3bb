"""Adversarial training through `cnnkit train --adv-train` on the full MNIST, against ordinary training.

Each model is trained by the real command (`cnnkit.cli.main(["train", ...])`: the MNIST recipe,
fastnet_t, runtime.precision auto, i.e. bf16 where the CPU has it), then best.ckpt is attacked with
PGD-40 (L∞, step 2.5 * eps / 40, one uniform random start; `--restarts` > 1 attacks again the
images still correct) on a fixed seeded subset of the test split, at each `--eps`. Reported per
model: clean accuracy on the full test split (summary.json), the run's own end-of-run robust
accuracy (summary.json `robust`: PGD-10 at the training eps on 500 test images), PGD-40
accuracy, training seconds (summary.json) and the load average around training: this 2-core
machine is shared, so the seconds are inflated by other sessions.

    .venv/bin/python benchmarks/bench_robust_train.py --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_robust import pgd_accuracy
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def train_run(runs: Path, name: str, common: list[str], extra: list[str]) -> tuple[Path, list[str], list]:
    from cnnkit.cli import main

    args = ["train", *common, "--runs-dir", str(runs), "--name", name, "--plain", *extra]
    load0 = machine_info()["load_average"]
    print(f"{name}: cnnkit {shlex.join(args)}", flush=True)
    code = main(args)
    if code != 0:
        raise SystemExit(f"{name}: cnnkit train exited with {code}")
    return runs / name, args, [load0, machine_info()["load_average"]]


def attack_run(run_dir: Path, data_root: str, n: int, eps_list: list[float], restarts: int) -> dict:
    from cnnkit.robust.attacks import pixel_forward
    from cnnkit.robust.evaluate import _split_subset

    _, _, _, model, normalize, x01, y, _ = _split_subset(run_dir, n, 0, "test", data_root, "cpu")
    forward = pixel_forward(model, normalize)
    out = {}
    t0 = time.perf_counter()
    for eps in eps_list:
        out[str(eps)] = pgd_accuracy(forward, x01, y, eps, steps=40, restarts=restarts)
        print(f"  PGD-40 eps {eps}: {out[str(eps)]}", flush=True)
    return {"pgd40": out, "attack_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--epochs", type=int, default=1, help="ordinary training's epochs")
    ap.add_argument(
        "--adv",
        default="--adv-train fgsm-rs --adv-eps 0.15 --adv-warmup 2 --epochs 2",
        help="the adversarial run's flags (several runs: separate them with ';')",
    )
    ap.add_argument("--common", default="--batch-size 128 --lr 0.1 --threads 1", help="flags of every run")
    ap.add_argument("--eval-n", type=int, default=1000)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("--eps", default="0.1,0.2,0.3")
    ap.add_argument("--skip-std", action="store_true")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = machine_info()["load_average"]
    common = [
        "--dataset",
        "mnist",
        "--data-root",
        args.data_root,
        "--set",
        "data.download=false",
        *shlex.split(args.common),
    ]
    eps_list = [float(e) for e in args.eps.split(",")]
    plans = [] if args.skip_std else [("ordinary", ["--epochs", str(args.epochs)])]
    plans += [(f"adversarial-{i + 1}", shlex.split(a)) for i, a in enumerate(args.adv.split(";"))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-robust-train-") as tmp:
        for name, extra in plans:
            run_dir, argv, load = train_run(Path(tmp), name, common, extra)
            summary = json.loads((run_dir / "summary.json").read_text())
            row = {
                "model": name,
                "command": "cnnkit " + shlex.join(argv).replace(tmp, "RUNS"),
                "architecture": summary["model"],
                "epochs": summary["epochs_run"],
                "precision": __import__("yaml").safe_load((run_dir / "config.yaml").read_text())["runtime"][
                    "precision"
                ],
                "train_seconds": summary["train_seconds"],
                "load_during_training": load,
                "clean_accuracy": summary["test"]["accuracy"],
                "adversarial_training": summary.get("adversarial_training"),
                "end_of_run_robust": summary.get("robust"),
            }
            row.update(attack_run(run_dir, args.data_root, args.eval_n, eps_list, args.restarts))
            rows.append(row)
            print(json.dumps(row, indent=1), flush=True)
    result = {
        "benchmark": "bench_robust_train", "started": started, "command": shlex.join(["benchmarks/bench_robust_train.py", *sys.argv[1:]]),
        "python": platform.python_version(), "torch": torch.__version__, "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "load_average_before": load_before, "eval_n": args.eval_n, "restarts": args.restarts, "rows": rows,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    stem = "bench_robust_train" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    eps = list(r["rows"][0]["pgd40"])
    many = f"pgd_{r['restarts']}_restarts" if r["restarts"] > 1 else "pgd_1_restart"
    head = (
        "| model | precision | epochs | train s | clean (10k) | end-of-run PGD-10 at the training eps | "
        + " | ".join(f"PGD-40 eps {e}" + (f" (1 / {r['restarts']} restarts)" if r["restarts"] > 1 else "") for e in eps)
        + " |"
    )
    lines = [
        "# Adversarial training through `cnnkit train` on MNIST", "",
        f"{r['started']}, {r['machine']['model']} ({r['machine']['simd']}), torch {r['torch']}; load average before: "
        f"{r['load_average_before']}, at the end: {r['machine']['load_average']} (2 cores: with a load average above ~2 other "
        "processes inflate the seconds; accuracies are not affected).", "",
        f"Command: `{r['command']}`", "",
        f"PGD-40 (L∞, step 2.5·eps/40, uniform random start) on a fixed seeded subset of {r['eval_n']} test images; "
        "clean accuracy on all 10,000 (summary.json).", "",
        head, "|---|---|---:|---:|---:|---:|" + "---:|" * len(eps),
    ]  # fmt: skip
    for row in r["rows"]:
        cells = " | ".join(
            f"{100 * row['pgd40'][e]['pgd_1_restart']:.1f} %"
            + (f" / {100 * row['pgd40'][e][many]:.1f} %" if r["restarts"] > 1 else "")
            for e in eps
        )
        er = row["end_of_run_robust"]
        end = f"{100 * er['robust_accuracy']:.1f} % at eps {er['eps']:g} ({er['n']} images)" if er else "-"
        lines.append(
            f"| {row['model']} | {row['precision']} | {row['epochs']} | {row['train_seconds']:.0f} | {100 * row['clean_accuracy']:.2f} % | {end} | {cells} |"
        )
    lines.append("")
    lines.extend(
        f"- {row['model']}: `{row['command']}` (load average during training {row['load_during_training']})"
        for row in r["rows"]
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
