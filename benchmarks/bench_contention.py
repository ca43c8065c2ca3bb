"""Training speed on a busy CPU: `cnnkit train` with its load-following thread count
(`runtime.num_threads` unset, the default) against a fixed count of one thread per core
(PyTorch's own default, which cnnkit used before), idle and beside competing processes,
measured in the same run on the same cores.

Conditions (each competitor is started before the run and killed after it):
- idle;
- one busy loop (`while True: pass` in another Python process);
- two busy loops;
- one PyTorch job (a 512x512 float matmul loop at PyTorch's default thread count).

The workload is `cnnkit train` on the bundled mnist-mini with its recipe (fastnet_t) and
`--epochs 3`, in a subprocess; the time is the run's `train_seconds` (summary.json). A run
that takes longer than `--timeout` seconds is stopped and reported as such. The fraction
"of idle" compares each run with the same setting's idle run. Run it on an otherwise idle
machine: the load average before and after is recorded, with lscpu's model and flags.

    .venv/bin/python benchmarks/bench_contention.py
    .venv/bin/python benchmarks/bench_contention.py --epochs 2 --conditions idle busy1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_results
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
BUSY = "while True: pass"
TORCH_JOB = "import torch\na = torch.randn(512, 512)\nwhile True: a @ a"
CONDITIONS = {"idle": [], "busy1": [BUSY], "busy2": [BUSY, BUSY], "torch1": [TORCH_JOB]}
SETTINGS = {"auto": [], "fixed": ["--threads", str(os.cpu_count() or 1)]}


def run_train(epochs: int, extra: list[str], runs_dir: str, timeout: float) -> dict:
    name = f"c{time.monotonic_ns()}"
    cmd = [
        sys.executable,
        "-m",
        "cnnkit",
        "train",
        "--epochs",
        str(epochs),
        "--plain",
        "--runs-dir",
        runs_dir,
        "--name",
        name,
        "--set",
        "run.html_report=false",
        *extra,
    ]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"train_seconds": None, "wall_seconds": round(time.perf_counter() - t0, 1), "timed_out": True}
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads((Path(runs_dir) / name / "summary.json").read_text())
    env = json.loads((Path(runs_dir) / name / "environment.json").read_text())
    notes = [line for line in done.stderr.splitlines() if "thread" in line]
    return {
        "train_seconds": summary["train_seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "test_accuracy": summary["test"]["accuracy"],
        "threads_at_start": env.get("cpu_threads"),
        "notes": notes,
    }


def measure(condition: str, setting: str, epochs: int, runs_dir: str, timeout: float) -> dict:
    competitors = [subprocess.Popen([sys.executable, "-c", code]) for code in CONDITIONS[condition]]
    try:
        time.sleep(2.0 if competitors else 0.0)  # let them take their cores
        load = os.getloadavg()[0]
        r = run_train(epochs, SETTINGS[setting], runs_dir, timeout)
    finally:
        for p in competitors:
            p.kill()
            p.wait()
    time.sleep(3.0)  # let the load settle
    return {"condition": condition, "setting": setting, "load_1min_before": round(load, 2), **r}


def markdown(r: dict) -> str:
    idle = {row["setting"]: row["train_seconds"] for row in r["rows"] if row["condition"] == "idle"}
    lines = [
        f"# Training on a busy CPU ({r['date']})",
        "",
        f"`cnnkit train` on mnist-mini, {r['epochs']} epochs, fastnet_t. CPU: {r['machine']['model']} "
        f"({r['machine']['cores']} cores, {r['machine']['simd']}); load average before: {r['load_before']}, after: {r['load_after']}.",
        "`auto`: cnnkit's load-following thread count (the default); `fixed`: one thread per core, PyTorch's default (cnnkit before).",
        "",
        "| condition | threads | training s | of idle speed | threads at start | test acc |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        t = row["train_seconds"]
        base = idle.get(row["setting"])
        frac = f"{base / t:.0%}" if t and base else "-"
        shown = f"{t:.1f}" if t else f"> {row['wall_seconds']:.0f} (stopped)"
        acc = f"{row['test_accuracy']:.2%}" if row.get("test_accuracy") is not None else "-"
        lines.append(
            f"| {row['condition']} | {row['setting']} | {shown} | {frac} | {row.get('threads_at_start', '-')} | {acc} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds before a run is stopped")
    ap.add_argument("--out", default=str(RESULTS / "bench_contention"))
    args = ap.parse_args()
    r = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
        "epochs": args.epochs,
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as runs_dir:
        for condition in args.conditions:
            for setting in args.settings:
                row = measure(condition, setting, args.epochs, runs_dir, args.timeout)
                print(json.dumps(row), flush=True)
                r["rows"].append(row)
    r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    write_results(r, args.out, markdown)


if __name__ == "__main__":
    main()
