"""The ceiling of dynamic batching's speed-up: the forward pass alone, ms per image at batch 1
against larger batches, for the two served models, on the backend and thread count bench_serve.py
uses (bf16 where the CPU computes it natively, 1 torch thread). A server answering one request per
forward cannot beat batch 1's cost per image; one batching them cannot beat the batch's, so their
ratio bounds `bench_serve.py`'s speed-up whatever the HTTP work costs.

    .venv/bin/python benchmarks/bench_serve_ceiling.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_serve_gil import served_model  # noqa: E402
from machine import machine_info  # noqa: E402

SIDES = {"fastnet_s": 32, "resnet18": 224}


def ms_per_image(run, x, seconds: float) -> float:
    run(x)
    run(x)
    times, stop = [], time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < 3:
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000 / len(x), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(SIDES), choices=list(SIDES))
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 16, 32])
    ap.add_argument("--backend", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per batch size")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_serve_ceiling"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    for name in args.models:
        backend = served_model(name, args.backend)
        side = SIDES[name]
        per = {b: ms_per_image(backend.run, torch.randn(b, 3, side, side), args.seconds) for b in args.batches}
        rows.append({"model": name, "side": side, "backend": backend.name, "ms_per_image": per})
        print(json.dumps(rows[-1]), flush=True)
    res = {
        "benchmark": "bench_serve_ceiling",
        "command": "python benchmarks/bench_serve_ceiling.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "load_average": [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]],
        "torch": torch.__version__,
        "threads": args.threads,
        "rows": rows,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    m, big = res["machine"], max(args.batches)
    md = [
        "# The forward alone: ms per image by batch size (the ceiling of batching's speed-up)",
        "",
        f"`{res['command']}`: {m['model']}, {m['cores']} cores, {args.threads} torch thread(s), torch {res['torch']}; "
        f"load average {res['load_average'][0]} before, {res['load_average'][1]} after. Median over {args.seconds:g} s per size.",
        "",
        "| model | backend | " + " | ".join(f"batch {b}" for b in args.batches) + f" | batch 1 / batch {big} |",
        "|---|---|" + "---:|" * (len(args.batches) + 1),
        *(
            f"| {r['model']} ({r['side']} px) | {r['backend']} | "
            + " | ".join(str(r["ms_per_image"][b]) for b in args.batches)
            + f" | **{r['ms_per_image'][1] / r['ms_per_image'][big]:.2f}x** |"
            for r in rows
        ),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
