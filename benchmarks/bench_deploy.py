"""Deployment speed and accuracy: cnnkit's CPU inference backends against fp32 eager PyTorch.

Speed: ResNet-18 at 224 px (random weights: speed does not depend on them; 1000 classes),
every backend of `cnnkit bench-infer` (fp32 eager, channels-last, bf16 autocast where the CPU
has it natively, torch.compile, onnxruntime fp32, onnxruntime static int8 QDQ calibrated on
random inputs): batch-1 latency p50/p95 and throughput at batch 32.
Targets (issue 15): the best backend >= 3x fp32 eager throughput at batch 32 on an AVX-512
VNNI/BF16 host (>= 2x on AVX2), and >= 2x lower batch-1 latency.

Accuracy: a model trained here with cnnkit's MNIST recipe (fastnet_t, one epoch on the full
MNIST from ../shared/datasets), every backend's accuracy on the 10,000 test images, and
`cnnkit quantize` (static int8) gated at --max-drop 0.5 point.

Timings are noisy when other processes share the CPU: the load average is recorded before and
after, with lscpu's model and SIMD flags. On an idle machine, rerun with the same command:

    .venv/bin/python benchmarks/bench_deploy.py --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
CONTENTION = "When the load average exceeds the cores, PyTorch's OpenMP threads (eager, channels-last, bf16, compile) wait on each other far more than onnxruntime's: the eager baseline and so every ratio here is inflated. Rerun on an idle machine before quoting a ratio; the accuracy numbers do not depend on load."


def resnet18_checkpoint(folder: Path) -> Path:
    from cnnkit.checkpoint import atomic_save, make_checkpoint
    from cnnkit.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=1000, in_chans=3)
    ckpt = make_checkpoint(
        model,
        class_names=[f"c{i}" for i in range(1000)],
        channels=3,
        size=(224, 224),
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
        config={},
        dataset="none (random weights)",
        epoch=0,
        metrics={},
    )
    folder.mkdir(parents=True, exist_ok=True)
    atomic_save(ckpt, folder / "best.ckpt")
    return folder


def trained_mnist(runs: Path, data_root: str) -> Path:
    from cnnkit.config import Config
    from cnnkit.training.trainer import train

    cfg = Config().with_overrides(
        {
            "data.dataset": "mnist",
            "data.root": data_root,
            "data.download": False,
            "run.runs_dir": str(runs),
            "run.name": "mnist",
        }
    )
    return train(cfg, quiet=True).dir


def speedups(result: dict) -> dict:
    rows = {r["backend"]: r for r in result["rows"] if r["available"]}
    eager = rows["eager"]
    best_thr = max(rows.values(), key=lambda r: r["throughput_img_s"])
    best_lat = min(rows.values(), key=lambda r: r["latency_ms_p50"])
    return {
        "best_throughput_backend": best_thr["backend"],
        "throughput_speedup": best_thr["throughput_img_s"] / eager["throughput_img_s"],
        "best_latency_backend": best_lat["backend"],
        "latency_speedup": eager["latency_ms_p50"] / best_lat["latency_ms_p50"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "datasets"))
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's, i.e. the cores)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--skip-accuracy", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("torch").setLevel(logging.WARNING)
    from cnnkit.deploy.bench import bench_infer, table
    from cnnkit.deploy.quantize import quantize

    out: dict = {"machine_before": machine_info(), "command": "python " + " ".join(sys.argv)}
    out["machine_before"].pop("flags")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_deploy.") as tmp:
        speed = bench_infer(
            resnet18_checkpoint(Path(tmp) / "resnet18"),
            threads=args.threads,
            batch=32,
            repeats=args.repeats,
            budget_s=60,
        )
        print(table(speed))
        out["resnet18_224"] = {**speed, **speedups(speed)}
        if not args.skip_accuracy:
            run = trained_mnist(Path(tmp) / "runs", args.data_root)
            acc = bench_infer(run, threads=args.threads, batch=32, repeats=args.repeats, images=10_000)
            print(table(acc))
            q = quantize(
                run / "export" / "model.onnx",
                out=run / "export" / "gate.int8.onnx",
                mode="static",
                calib=256,
                max_drop=0.5,
                check=False,
            )
            eager = next(r["accuracy"] for r in acc["rows"] if r["backend"] == "eager")
            acc["accuracy_loss_points"] = {
                r["backend"]: 100 * (eager - r["accuracy"])
                for r in acc["rows"]
                if r["available"] and r["accuracy"] is not None
            }
            acc["quantize_gate"] = {
                k: q.report[k]
                for k in ("accuracy_fp32", "accuracy_int8", "drop_points", "max_drop_points", "test_images")
            }
            out["mnist_fastnet_t"] = acc
    out["machine_after"] = machine_info()
    out["machine_after"].pop("flags")
    out["seconds"] = time.time() - t0
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_deploy.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "bench_deploy.md").write_text(markdown(out))
    print((RESULTS / "bench_deploy.md").read_text())
    return 0


def _rows(result: dict) -> list[str]:
    eager = next(r for r in result["rows"] if r["backend"] == "eager")
    lines = [
        "| backend | batch-1 p50 ms | p95 ms | images/s at batch 32 | vs eager | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        if not r["available"]:
            lines.append(f"| {r['backend']} | unavailable: {r['reason']} | | | | |")
            continue
        acc = f"{100 * r['accuracy']:.2f} %" if r["accuracy"] is not None else "-"
        lines.append(
            f"| {r['backend']} | {r['latency_ms_p50']:.2f} | {r['latency_ms_p95']:.2f} | {r['throughput_img_s']:.1f} | {r['throughput_img_s'] / eager['throughput_img_s']:.2f}x | {acc} |"
        )
    return lines


def markdown(out: dict) -> str:
    m, s = out["machine_before"], out["resnet18_224"]
    lines = [
        "# Deployment: CPU inference backends (cnnkit bench-infer)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {m['model']}, {m['cores']} cores, SIMD: {m['simd']}; {s['threads']} threads; "
        f"load average before/after: {m['load_average']} / {out['machine_after']['load_average']} (a shared machine: timings are noisy).",
        "",
        "## ResNet-18, 224 px, 1000 classes (random weights)",
        "",
        *_rows(s),
        "",
        f"- best throughput: **{s['best_throughput_backend']} {s['throughput_speedup']:.2f}x** fp32 eager at batch 32 (target >= 3x on VNNI/BF16 hosts, >= 2x on AVX2)",
        f"- best batch-1 latency: **{s['best_latency_backend']} {s['latency_speedup']:.2f}x** lower than fp32 eager (target >= 2x)",
    ]
    if "mnist_fastnet_t" in out:
        a = out["mnist_fastnet_t"]
        g = a["quantize_gate"]
        lines += [
            "",
            "## Accuracy: fastnet_t trained on MNIST (cnnkit's recipe, one epoch), 10,000 test images",
            "",
            *_rows(a),
            "",
            "- accuracy loss vs fp32 eager (points): "
            + ", ".join(f"{k} {v:+.2f}" for k, v in a["accuracy_loss_points"].items()),
            f"- `cnnkit quantize --mode static --max-drop 0.5`: fp32 {100 * g['accuracy_fp32']:.2f} % -> int8 {100 * g['accuracy_int8']:.2f} % (drop {g['drop_points']:+.2f} points)",
        ]
    if max(m["load_average"][0], out["machine_after"]["load_average"][0]) > (m["cores"] or 1):
        lines += ["", "**" + CONTENTION + "**"]
    lines += ["", f"Command: `{out['command']}` ({out['seconds']:.0f} s)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
