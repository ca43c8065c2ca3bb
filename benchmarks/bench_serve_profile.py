"""Where `cnnkit serve` spends its CPU per request (fastnet_s at 32 px by default).

Two measurements, both in CPU time (less disturbed than wall time on a shared machine):
  1. each stage of a /v1/predict request timed in-process with time.thread_time: multipart parsing,
     image decode, preprocessing, the forward (batch 1, and per image at --max-batch), the prediction
     records + response, the Prometheus metrics;
  2. real servers (`cnnkit serve`, uvicorn) under the raw keep-alive client of bench_serve.py at a fixed
     concurrency: server CPU ms per request for GET /healthz (the floor: HTTP, event loop, FastAPI,
     middleware, metrics), and for POST /v1/predict, naive (--max-batch 1) and dynamic, as multipart
     and as a raw image/png body.

    .venv/bin/python benchmarks/bench_serve_profile.py --threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_serve import MODELS, RawConnection, Server, cpu_s, images, make_checkpoint, multipart_request  # noqa: E402
from machine import machine_info  # noqa: E402


def cpu_ms(fn, n: int, per: int = 1) -> float:
    fn()
    start = time.thread_time()
    for _ in range(n):
        fn()
    return round((time.thread_time() - start) * 1000 / n / per, 4)


def stages(ckpt: Path, size: int, max_batch: int) -> dict:
    """CPU ms of each stage of one request, in this process (torch threads as set by --threads)."""
    from starlette.datastructures import Headers

    from cnnkit.serve.decode import decode_image
    from cnnkit.serve.metrics import Metrics
    from cnnkit.serve.model import ServedModel
    from cnnkit.serve.requests import _InMemoryParser

    model = ServedModel.load(ckpt)
    png = images(size, 1)[0]
    request = multipart_request(8000, "0.png", png)
    head, body = request.split(b"\r\n\r\n", 1)
    pairs = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:]]
    headers = Headers(raw=[(name.lower(), value) for name, value in pairs])
    loop = asyncio.new_event_loop()

    async def parse():
        async def stream():
            yield body

        form = await _InMemoryParser(headers, stream(), max_files=64, max_fields=32, max_part_size=65536).parse()
        await form.close()

    img = decode_image(png, "f")
    x1 = model.preprocess(img)[None]
    xb = np.repeat(x1, max_batch, 0)
    probs = model.forward(x1)
    metrics = Metrics({"/v1/predict"})

    def observe():
        metrics.in_flight.inc()
        metrics.in_flight.dec()
        metrics.requests.labels("/v1/predict", "POST", "200").inc()
        metrics.latency.labels("/v1/predict", "200").observe(0.01)

    def respond():
        from fastapi.responses import JSONResponse

        d = model.predictions(probs, ["0.png"], 5).to_dict()
        d["latency_ms"] = 1.0
        return JSONResponse(d)

    out = {
        "multipart parsing": cpu_ms(lambda: loop.run_until_complete(parse()), 300),
        "image decode (PIL)": cpu_ms(lambda: decode_image(png, "f"), 300),
        "preprocess": cpu_ms(lambda: model.preprocess(img), 300),
        "forward, batch 1": cpu_ms(lambda: model.forward(x1), 100),
        f"forward, batch {max_batch}, per image": cpu_ms(lambda: model.forward(xb), 10, max_batch),
        "top-k records + JSON response": cpu_ms(respond, 300),
        "Prometheus metrics": cpu_ms(observe, 300),
    }
    loop.close()
    return out


def app_cost(ckpt: Path, size: int) -> dict:
    """CPU ms per request of the whole ASGI app on the event loop (FastAPI, middleware, metrics, parsing,
    decode, batcher hand-off, response) with the forward stubbed out, called in-process without HTTP."""
    from cnnkit.serve.app import create_app
    from cnnkit.serve.config import ServeConfig
    from cnnkit.serve.model import ServedModel

    model = ServedModel.load(ckpt)
    classes = len(model.class_names)
    model.forward = lambda x: np.full((len(x), classes), 1 / classes, np.float32)  # type: ignore[method-assign]
    app = create_app(model, ServeConfig(max_batch=1, max_wait_ms=0, threads=1))
    png = images(size, 1)[0]

    def split(request: bytes):
        head, body = request.split(b"\r\n\r\n", 1)
        pairs = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:]]
        return [(name.lower(), value) for name, value in pairs], body

    kinds = {k: split(make(0)) for k, make in request_kinds(1, png, floor=False).items()}
    kinds["GET /healthz"] = ([], b"")

    async def call(kind: str) -> None:
        headers, body = kinds[kind]
        path, method = ("/healthz", "GET") if kind == "GET /healthz" else ("/v1/predict", "POST")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method}
        scope |= {"scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": ""}
        scope |= {"headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "state": {}}
        sent: list = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        assert sent[0]["status"] == 200, sent

    async def measure() -> dict:
        out = {}
        async with app.router.lifespan_context(app):
            for kind in kinds:
                for _ in range(50):
                    await call(kind)
                start = time.thread_time()
                for _ in range(500):
                    await call(kind)
                out[f"whole app, forward stubbed: {kind}"] = round((time.thread_time() - start) * 1000 / 500, 4)
        return out

    return asyncio.run(measure())


async def _drive(url: str, make, concurrency: int, seconds: float) -> int:
    """Closed loop of `concurrency` raw connections for `seconds`; the number of 200 answers."""
    ok = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int):
        nonlocal ok
        conn, i = RawConnection(url), w
        while time.perf_counter() < stop:
            code, _ = await conn.request(make(i))
            ok += code == 200
            i += concurrency
        conn.close()

    await asyncio.gather(*[worker(w) for w in range(concurrency)])
    return ok


def server_cpu(server: Server, make, concurrency: int, seconds: float) -> dict:
    asyncio.run(_drive(server.url, make, 4, 1.0))  # warm
    cpu0, t0 = cpu_s(server.proc.pid), time.perf_counter()
    ok = asyncio.run(_drive(server.url, make, concurrency, seconds))
    cpu, wall = cpu_s(server.proc.pid) - cpu0, time.perf_counter() - t0
    return {
        "server_cpu_ms_per_request": round(cpu * 1000 / max(ok, 1), 3),
        "rps": round(ok / wall, 1),
        "answered": ok,
        "load_average": round(os.getloadavg()[0], 2),
    }


def request_kinds(port: int, png: bytes, floor: bool) -> dict:
    """Builders of request bytes: multipart, raw image/png body, and (floor) GET /healthz."""
    raw_head = f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
    kinds = {
        "multipart": lambda i: multipart_request(port, f"{i}.png", png),
        "raw image/png": lambda i: (
            (raw_head + f"X-Filename: {i}.png\r\nContent-Length: {len(png)}\r\n\r\n").encode() + png
        ),
    }
    if floor:
        kinds["GET /healthz (floor)"] = lambda i: f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    return kinds


def servers(ckpt: Path, size: int, args) -> dict:
    png = images(size, 1)[0]
    flags = [*args.server_flags, "--max-queue", "1024", "--timeout-s", "60"]
    port_of = lambda s: int(s.url.rsplit(":", 1)[1])  # noqa: E731
    out = {}
    for mode, batch in (("naive", ["--max-batch", "1", "--max-wait-ms", "0"]), ("dynamic", args.batch_flags)):
        server = Server(ckpt, *batch, *flags)
        port = port_of(server)
        kinds = request_kinds(port, png, floor=mode == "naive")
        try:
            for kind, make in kinds.items():
                out[f"{mode}: {kind}"] = r = server_cpu(server, make, args.concurrency, args.seconds)
                print(f"  {mode:7s} {kind:22s} {r}", flush=True)
        finally:
            server.stop()
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# cnnkit serve: where the CPU goes per request",
        "",
        f"Machine: {m['model']}, {m['cores']} cores ({m['simd']}); load average at start {m['load_average']}, "
        f"at end {res['load_average_end']} (shared with other sessions: CPU times inflate under load).",
        f"Command: `{res['command']}`. Model {res['model']} at {res['size']} px.",
        "",
        "## Stages, in-process (CPU ms per image, time.thread_time of the event loop's thread)",
        "",
        "| stage | CPU ms |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in res["stages"].items()],
        "",
        f"## Real servers under the raw keep-alive client (concurrency {res['args']['concurrency']}, {res['args']['seconds']} s each)",
        "",
        "| server: request | server CPU ms/request | req/s | load avg |",
        "|---|---:|---:|---:|",
        *[
            f"| {k} | {v['server_cpu_ms_per_request']} | {v['rps']} | {v['load_average']} |"
            for k, v in res["servers"].items()
        ],
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="fastnet_s")
    p.add_argument("--threads", type=int, default=1, help="torch threads, here and in the servers (default 1)")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--seconds", type=float, default=6.0, help="per server measurement")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_serve_profile"))
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    args.server_flags = ["--threads", str(args.threads)]
    args.batch_flags = ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    size = MODELS[args.model]
    res: dict = {
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "command": "python benchmarks/bench_serve_profile.py " + " ".join(sys.argv[1:]),
        "model": args.model,
        "size": size,
        "args": dict(vars(args)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_checkpoint(args.model, size, Path(tmp))
        res["stages"] = stages(ckpt, size, args.max_batch) | app_cost(ckpt, size)
        print(json.dumps(res["stages"], indent=1), flush=True)
        res["servers"] = servers(ckpt, size, args)
    res["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
