"""Why `cnnkit serve` sets Python's GIL switch interval: a batched forward on the model's thread,
alone and beside a busy pure-Python thread (what the event loop is under load), at several switch
intervals (`sys.setswitchinterval`).

PyTorch releases the GIL inside each operation and takes it back after; when another thread holds
it, the model's thread waits until that thread lets go, which a busy Python thread does only every
switch interval (5 ms by default). A forward of N operations can then wait N times. One torch thread
(as `bench_serve.py --threads 1`), wall milliseconds per forward, the median of --repeats.

    .venv/bin/python benchmarks/bench_serve_gil.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_info  # noqa: E402

SIZES = {"fastnet_s": (32, 32), "resnet18": (224, 8)}  # model: (input side, batch)


def forward_ms(run, x, n: int) -> float:
    import statistics

    run(x)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


class Busy:
    """A thread running pure-Python work without ever blocking, until stopped."""

    def __enter__(self):
        self.stop = False

        def spin():
            d = {}
            while not self.stop:
                for i in range(1000):
                    d[i] = str(i)

        self.thread = threading.Thread(target=spin, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()


def served_model(name: str, backend_name: str):
    """The random-weight model `name` (10 classes, 3 channels) on cnnkit.deploy's `backend_name`, or on eager
    where that backend is unavailable (bf16 without native bf16): what `cnnkit serve --backend` runs."""
    from cnnkit.deploy.backends import torch_backend
    from cnnkit.models import create_model

    model = create_model(name, num_classes=10, in_chans=3).eval()
    backend = torch_backend(backend_name, model)
    return backend if backend.run is not None else torch_backend("eager", model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument(
        "--backend", default="bf16", help="cnnkit.deploy backend (bf16 falls back to eager without native bf16)"
    )
    ap.add_argument("--intervals-ms", nargs="+", type=float, default=[5.0, 1.0, 0.5, 0.2])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_serve_gil"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    default = sys.getswitchinterval()
    rows = []
    for name in args.models:
        side, batch = SIZES[name]
        backend = served_model(name, args.backend)
        x = torch.randn(batch, 3, side, side)
        row = {"model": name, "backend": backend.name, "batch": batch, "side": side}
        sys.setswitchinterval(default)
        row["alone_ms"] = forward_ms(backend.run, x, args.repeats)
        row["beside_busy_ms"] = {}
        for ms in args.intervals_ms:
            sys.setswitchinterval(ms / 1000)
            with Busy():
                row["beside_busy_ms"][str(ms)] = forward_ms(backend.run, x, args.repeats)
        sys.setswitchinterval(default)
        print(json.dumps(row), flush=True)
        rows.append(row)
    res = {
        "benchmark": "bench_serve_gil",
        "command": "python benchmarks/bench_serve_gil.py " + " ".join(sys.argv[1:]),
        "machine": machine_info(),
        "load_average": [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]],
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "rows": rows,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    heads = " | ".join(f"beside a busy thread, switch {ms:g} ms" for ms in args.intervals_ms)
    m = res["machine"]
    md = [
        "# A batched forward beside a busy Python thread: the GIL's switch interval",
        "",
        f"`{res['command']}`: {m['model']}, {m['cores']} cores, 1 torch thread, Python {res['python']}, torch "
        f"{res['torch']}; load average {res['load_average'][0]} before, {res['load_average'][1]} after. "
        "Median wall ms per forward.",
        "",
        f"| model | backend | batch | alone | {heads} |",
        "|---|---|---:|---:|" + "---:|" * len(args.intervals_ms),
        *(
            f"| {r['model']} ({r['side']} px) | {r['backend']} | {r['batch']} | {r['alone_ms']} | "
            + " | ".join(str(r["beside_busy_ms"][str(ms)]) for ms in args.intervals_ms)
            + " |"
            for r in rows
        ),
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
