"""Deployment accuracy targets of issue 15 (accuracy does not depend on the machine's load; times do).

prune: a CIFAR-10 model trained with cnnkit's cifar-fast recipe (fastnet_s, the JPEG copy in
  ../shared/datasets, a short `train.time_budget`), `cnnkit prune --target-macs 0.5` with recovery
  through the training engine (`--finetune-epochs`): test accuracy (all 10,000 images, no TTA)
  before, right after pruning and after recovery. Target: recovered within 1 point of unpruned.
lite0: the pretrained EfficientNet-Lite0 fine-tuned (head, features cached, 96 px) on the
  100-per-class CIFAR-10 subset (bench_transfer.py's run a), then `cnnkit quantize --mode static`
  (onnxruntime, per-channel QDQ, 256 calibration images): fp32 and int8 ONNX accuracy on the
  10,000 test images. Target: int8 within 1 point of fp32.

    .venv/bin/python benchmarks/bench_deploy_accuracy.py --parts prune lite0 --budget 180 --recovery-epochs 4
    .venv/bin/python benchmarks/bench_deploy_accuracy.py --parts prune --parent-epochs 14  # the fully trained parent
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_transfer import extract_subset
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
TARBALL = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _parent(folder: Path, runs: Path, args) -> dict:
    """The unpruned CIFAR-10 run runs/cifar: trained here, or (with --parent-dir) the one a previous call left."""
    from cnnkit.config import Config
    from cnnkit.training.trainer import train

    if (runs / "cifar" / "summary.json").is_file():
        s = json.loads((runs / "cifar" / "summary.json").read_text())
        return {
            "test_accuracy_tta": s["test"]["accuracy"],
            "epochs": s["epochs_run"],
            "train_seconds": s["train_seconds"],
            "reused": str(runs / "cifar"),
        }
    cfg = Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(folder),
            "data.image_size": 32,
            "train.recipe": "cifar-fast",
            **(
                {"train.epochs": args.parent_epochs}
                if args.parent_epochs
                else {"train.time_budget": float(args.budget)}
            ),
            "train.seed": 0,
            "runtime.num_threads": args.threads,
            "run.runs_dir": str(runs),
            "run.name": "cifar",
            "run.html_report": False,
        }
    )
    load0 = load_avg()
    run = train(cfg, quiet=True)
    s = run.summary
    return {
        "test_accuracy_tta": s["test"]["accuracy"],
        "epochs": len(run.metrics),
        "train_seconds": s.get("train_seconds"),
        "load_avg_before_after": [load0, load_avg()],
    }


def part_prune(tmp: Path, args) -> dict:
    from cnnkit.deploy.prune import prune_run

    t0 = time.perf_counter()
    base = Path(args.parent_dir) if args.parent_dir else tmp  # --parent-dir: the data and the parent run are kept
    if not (base / "cifar10").is_dir():
        with tarfile.open(args.tarball, "r:gz") as tf:
            tf.extractall(base / "cifar10", filter="data")
    folder = next(p.parent for p in (base / "cifar10").rglob("train") if p.is_dir())
    trained = _parent(folder, base / "runs", args)
    print(f"trained: {trained}", flush=True)
    load0 = load_avg()
    t1 = time.perf_counter()
    rep = prune_run(
        base / "runs" / "cifar",
        target_macs=args.target_macs,
        finetune_epochs=args.recovery_epochs,
        lr=args.lr,
        out=tmp / "runs" / "cifar-pruned",
    )
    before, pruned, recovered = (rep[k]["accuracy"] for k in ("before", "after_pruning", "after_recovery"))
    gap = 100 * (before - recovered)
    return {
        "command": f"cnnkit train (recipe cifar-fast, {parent_length(args)}, {args.threads} threads) && "
        f"cnnkit prune RUN --target-macs {args.target_macs} --finetune-epochs {args.recovery_epochs} --lr {args.lr}",
        "total_seconds": round(time.perf_counter() - t0, 1),
        "prune_seconds": round(time.perf_counter() - t1, 1),
        "trained": trained,
        "prune": {
            k: rep[k] for k in ("before", "after_pruning", "after_recovery", "finetune", "method", "target_macs")
        },
        "accuracy": {"unpruned": before, "pruned": pruned, "recovered": recovered},
        "gap_points": round(gap, 2),
        "macs_kept": rep["after_recovery"]["macs"] / rep["before"]["macs"],
        "latency_speedup_b1_eager": rep["before"]["latency_ms_b1"] / rep["after_recovery"]["latency_ms_b1"],
        "target_met": gap <= 1.0,
        "target_demonstrated": gap >= -1.0,  # far above an under-trained parent: extra training, not recovery
        "load_avg_before_after": [load0, load_avg()],
    }


def part_lite0(tmp: Path, args) -> dict:
    from cnnkit.config import Config
    from cnnkit.deploy.quantize import quantize
    from cnnkit.training.trainer import train

    t0 = time.perf_counter()
    extract_subset(args.tarball, tmp / "cifar10-100", 100, None)
    cfg = Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(tmp / "cifar10-100"),
            "data.val_fraction": 0.1,
            "data.image_size": 96,
            "model.name": "efficientnet_lite0",
            "model.pretrained": True,
            "model.finetune": "head",
            "augment.preset": "none",
            "train.epochs": 30,
            "train.batch_size": 64,
            "optim.name": "adamw",
            "optim.lr": 2e-3,
            "optim.weight_decay": 1e-4,
            "schedule.name": "cosine",
            "schedule.warmup_fraction": 0.0,
            "train.seed": 0,
            "runtime.num_threads": args.threads,
            "run.runs_dir": str(tmp / "runs"),
            "run.name": "lite0",
            "run.html_report": False,
        }
    )
    load0 = load_avg()
    run = train(cfg, quiet=True)
    trained = {"test_accuracy": run.summary["test"]["accuracy"], "load_avg_before_after": [load0, load_avg()]}
    print(f"trained: {trained}", flush=True)
    load0 = load_avg()
    r = quantize(run.dir, mode="static", calib=256, max_drop=1.0, check=False)
    rep = r.report
    return {
        "command": "bench_transfer.py run a (Lite0 head, 96 px, 100/class) && cnnkit quantize RUN --mode static --calib 256",
        "total_seconds": round(time.perf_counter() - t0, 1),
        "trained": trained,
        "quantize": {k: v for k, v in rep.items() if k not in ("fp32", "int8")},
        "accuracy": {"fp32": rep["accuracy_fp32"], "int8": rep["accuracy_int8"]},
        "gap_points": round(rep["drop_points"], 2),
        "target_met": rep["drop_points"] <= 1.0,
        "load_avg_before_after": [load0, load_avg()],
    }


def parent_length(args) -> str:
    """How long the unpruned run trained: a fixed number of epochs (load-independent) or a time budget."""
    return f"--epochs {args.parent_epochs}" if args.parent_epochs else f"--time-budget {args.budget}s"


def verdict(p: dict) -> str:
    """The pruning target's verdict; a recovered model far above an under-trained parent proves nothing."""
    if p["gap_points"] < -1.0:
        return (
            f"not demonstrated: the parent is under-trained ({p['trained']['epochs']} epoch(s) in the budget), "
            "so the recovery's extra epochs dominate; rerun with a longer --budget on an idle machine"
        )
    return "met" if p["target_met"] else "not met"


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# Deployment accuracy targets (issue 15)",
        "",
        f"{res['date']}, {m['model']}, {m['cores']} cores, SIMD: {m['simd']}; torch {res['torch']}; "
        f"{res['threads']} threads. Accuracies do not depend on the machine's load; the times here do (load averages recorded).",
        "",
    ]
    if "prune" in res:
        p = res["prune"]
        lines += [
            "## CIFAR-10 model pruned to half its MACs, recovered through the training engine",
            "",
            "| stage | params | MACs | test accuracy (10,000 images, no TTA) |",
            "|---|---:|---:|---:|",
        ]
        for key, label in (("before", "unpruned"), ("after_pruning", "pruned"), ("after_recovery", "recovered")):
            r = p["prune"][key]
            lines.append(f"| {label} | {r['params']:,} | {r['macs']:,} | {100 * r['accuracy']:.2f} % |")
        lines += [
            "",
            f"- unpruned run: cifar-fast recipe, {p['trained']['epochs']} epochs "
            f"({100 * p['trained']['test_accuracy_tta']:.2f} % with the run's TTA); recovery: "
            f"{p['prune']['finetune']['epochs']} epochs of the same recipe ({p['prune']['finetune']['precision']}, "
            f"{p['prune']['finetune']['schedule']} schedule, lr {p['prune']['finetune']['lr']}).",
            f"- MACs kept {100 * p['macs_kept']:.0f} %; recovered minus unpruned: {-p['gap_points']:+.2f} points "
            f"(target: within 1 point: **{verdict(p)}**).",
            *(
                []
                if p["trained"]["epochs"] >= 14
                else [
                    "- The unpruned model had only a few epochs of a short budget and the recovery "
                    "trains more epochs of the same recipe, so the comparison also credits that extra training: the "
                    "target is checked as stated, but a fully trained parent would be the stricter test."
                ]
            ),
            f"- batch-1 eager speed-up {p['latency_speedup_b1_eager']:.2f}x (load average {p['load_avg_before_after']}: a shared machine, noisy).",
            f"- Command: `{p['command']}` ({p['total_seconds']} s in all)",
            "",
        ]
    if "lite0" in res:
        q = res["lite0"]
        lines += [
            "## EfficientNet-Lite0 (pretrained, head fine-tuned on 100 per class) int8",
            "",
            "| model | test accuracy (10,000 images) |",
            "|---|---:|",
            f"| PyTorch run (TTA as the run) | {100 * q['trained']['test_accuracy']:.2f} % |",
            f"| ONNX fp32 | {100 * q['accuracy']['fp32']:.2f} % |",
            f"| ONNX int8 (static, QDQ, per-channel, {q['quantize'].get('calib_images', 256)} calibration images) | {100 * q['accuracy']['int8']:.2f} % |",
            "",
            f"- drop {q['gap_points']:+.2f} points (target: within 1 point: **{'met' if q['target_met'] else 'not met'}**); "
            f"size {q['quantize']['size_bytes']['fp32']:,} -> {q['quantize']['size_bytes']['int8']:,} bytes.",
            f"- Command: `{q['command']}` ({q['total_seconds']} s in all; load average {q['load_avg_before_after']})",
            "",
        ]
    lines.append(f"Command: `{res['command']}`")
    return "\n".join(lines) + "\n"


def rewrite(out: str) -> None:
    """Regenerate results/<out>.md from its JSON (after a change to `markdown`)."""
    res = json.loads((RESULTS / f"{out}.json").read_text())
    (RESULTS / f"{out}.md").write_text(markdown(res))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=("prune", "lite0"), default=["prune", "lite0"])
    p.add_argument("--tarball", type=Path, default=TARBALL)
    p.add_argument("--budget", type=float, default=180, help="seconds of training for the unpruned CIFAR-10 model")
    p.add_argument("--target-macs", type=float, default=0.5)
    p.add_argument(
        "--parent-epochs",
        type=int,
        default=None,
        help="train the unpruned model this many epochs instead of --budget seconds (the recipe's own is 14); "
        "accuracy then does not depend on the machine's load",
    )
    p.add_argument(
        "--parent-dir",
        metavar="DIR",
        help="keep the extracted data and the unpruned run in DIR and reuse them on the next call (recovery settings compared on one parent)",
    )
    p.add_argument("--recovery-epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01, help="recovery peak learning rate (cnnkit prune --lr)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="bench_deploy_accuracy", help="results/<out>.json and .md")
    args = p.parse_args()
    res: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "torch": torch.__version__,
        "threads": args.threads,
        "command": "python benchmarks/bench_deploy_accuracy.py " + " ".join(sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-deploy-acc-") as tmp:
        os.environ["CNNKIT_CACHE"] = str(Path(tmp) / "decode-cache")
        for part in args.parts:
            res[part] = (part_prune if part == "prune" else part_lite0)(Path(tmp), args)
            print(json.dumps(res[part]["accuracy"]), res[part]["gap_points"], flush=True)
            res["load_avg_end"] = load_avg()
            RESULTS.mkdir(exist_ok=True)  # written after each part: a later part's failure keeps the earlier numbers
            (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
            (RESULTS / f"{args.out}.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
