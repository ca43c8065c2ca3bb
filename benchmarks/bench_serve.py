"""Load test of `cnnkit serve` on loopback: naive serving (one forward per request, --max-batch 1)
against dynamic batching, at several concurrencies; an overload run; a soak with the server's RSS.

Each configuration starts `cnnkit serve` as a child process on 127.0.0.1 (a free port; only
loopback is ever contacted), with a checkpoint of random weights (speed does not depend on them):
  - fastnet_s at 32x32x3 (the default CIFAR-size model), ResNet-18 at 224x224x3.
The client keeps a fixed number of requests in flight (closed loop), each request one PNG image
(multipart, or with --body raw the PNG as the body, Content-Type image/png), bounded by a request
count and a time limit per run. By default it is a minimal keep-alive HTTP/1.1 client on asyncio
streams (--client raw, ~0.1-0.5 ms of CPU per request); --client httpx is the heavier
httpx.AsyncClient (~2 ms per request), which on 2 shared cores takes CPU from the server.
Server CPU ms/request (from /proc) is reported beside throughput: it is less disturbed by other load.

Overload: 4x more requests in flight than the service admits (--max-batch + --max-queue); a client
answered 503 waits Retry-After/20 and sends again. Every answer must be a 200 or a fast 503 (no
timeout, no 500); afterwards, at concurrency 1, every request must succeed (recovery).
Soak: a fixed concurrency for --soak-seconds; every request must be answered 200; RSS at start/end.
Scale-out (--workers): `cnnkit serve --workers N` for each N of --workers-n, at concurrency 32.

    .venv/bin/python benchmarks/bench_serve.py                 # both models, results in benchmarks/results/
    .venv/bin/python benchmarks/bench_serve.py --models fastnet_s --parts soak --soak-seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_info  # noqa: E402

MODELS = {"fastnet_s": 32, "resnet18": 224}


def make_checkpoint(name: str, size: int, folder: Path) -> Path:
    import torch

    from cnnkit.checkpoint import atomic_save, make_checkpoint
    from cnnkit.models import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=3)
    ckpt = make_checkpoint(
        model,
        class_names=[f"c{i}" for i in range(10)],
        channels=3,
        size=(size, size),
        mean=[0.5] * 3,
        std=[0.25] * 3,
        config={},
        dataset="random",
        epoch=0,
        metrics={},
    )
    path = folder / f"{name}.ckpt"
    atomic_save(ckpt, path)
    return path


def images(size: int, n: int = 16) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads): less disturbed by other load than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """cpu_s of a process and its descendants (uvicorn --workers: the workers are children)."""
    total = cpu_s(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError, ValueError):  # a child gone meanwhile
                total += tree_cpu_s(int(child))
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, ckpt: Path, *flags: str):
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        env.pop("CNNKIT_API_KEY", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cnnkit",
                "serve",
                str(ckpt),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *flags,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cnnkit serve {ckpt} {' '.join(flags)} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("server not ready in 180 s")

    def stop(self) -> int | None:
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


BOUNDARY = "cnnkit-bench-boundary"


def multipart_request(port: int, name: str, png: bytes) -> bytes:
    """One keep-alive HTTP/1.1 POST /v1/predict with one PNG as multipart (what httpx would send)."""
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def raw_request(port: int, name: str, png: bytes) -> bytes:
    """The PNG as the whole body (Content-Type image/png), its name in X-Filename."""
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
        f"X-Filename: {name}\r\nContent-Length: {len(png)}\r\n\r\n"
    )
    return head.encode() + png


def load_with(args, *a, **kw) -> dict:
    """`load` with the client and body chosen on the command line."""
    return asyncio.run(load(*a, client=args.client, body=args.body, **kw))


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (a few microseconds of CPU per request,
    where httpx spends about 1.8 ms): on 2 shared cores the load generator must not eat the server's CPU."""

    def __init__(self, url: str):
        hostport = url.split("//", 1)[1]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, data: bytes) -> tuple[int, bytes]:
        await self.connect()
        assert self.reader is not None
        try:
            self.writer.write(data)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            i = lower.index(b"content-length:") + 15
            body = await self.reader.readexactly(int(lower[i : lower.index(b"\r\n", i)]))
        except BaseException:
            self.close()
            raise
        if b"connection: close" in lower:
            self.close()
        return int(head[9:12]), body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(
    url: str,
    pngs: list[bytes],
    concurrency: int,
    max_requests: int,
    seconds: float,
    retry_503_s: float | None = None,
    client: str = "raw",
    body: str = "multipart",
) -> dict:
    """`concurrency` clients in a closed loop until `max_requests` are sent or `seconds` pass.
    client "raw": RawConnection per client (keep-alive); "httpx": one httpx.AsyncClient (the old load generator)."""
    import httpx

    lat_ok, lat_503, statuses = [], [], {}
    sent = 0
    # This process holds torch (it made the checkpoint): a full collection of its ~200k objects takes 60-90 ms
    # on these cores and would stall every in-flight request's clock. The load generator must not add pauses.
    gc.collect()
    gc.freeze()
    port = int(url.rsplit(":", 1)[1])
    cpu0 = time.process_time()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as hx:
        # The connections open before the clock starts: at concurrency 32, 32 connects and first requests at
        # once took ~100+ ms, which on 2,000 requests was the whole p99 (1.6 % of them), not the steady state.
        conns = [RawConnection(url) for _ in range(concurrency)]
        if client == "raw":
            await asyncio.gather(*(c.connect() for c in conns))
        start = time.perf_counter()
        stop_at = start + seconds

        async def one(conn: RawConnection, i: int) -> int | str:
            name = f"{i}.png"
            png = pngs[i % len(pngs)]
            if client == "httpx" and body == "raw":
                r = await hx.post("/v1/predict", content=png, headers={"Content-Type": "image/png", "X-Filename": name})
                code, data = r.status_code, r.content
            elif client == "httpx":
                r = await hx.post("/v1/predict", files=[("files", (name, png, "image/png"))])
                code, data = r.status_code, r.content
            else:
                make = raw_request if body == "raw" else multipart_request
                code, data = await asyncio.wait_for(conn.request(make(port, name, png)), 60)
            if code == 200:
                assert json.loads(data)["predictions"][0]["source"] == name
            return code

        async def worker(w: int):
            nonlocal sent
            i = w
            conn = conns[w]
            while sent < max_requests and time.perf_counter() < stop_at:
                sent += 1
                t = time.perf_counter()
                try:
                    code = await one(conn, i)
                except (httpx.TimeoutException, TimeoutError):
                    code = "timeout"
                except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as e:
                    code = type(e).__name__
                dt = time.perf_counter() - t
                statuses[str(code)] = statuses.get(str(code), 0) + 1
                (lat_ok if code == 200 else lat_503 if code == 503 else []).append(dt)
                if code == 503 and retry_503_s:
                    await asyncio.sleep(retry_503_s)
                i += concurrency
            conn.close()

        await asyncio.gather(*[worker(w) for w in range(concurrency)])
        wall = time.perf_counter() - start
    q = lambda xs, p: round(float(np.percentile(xs, p)) * 1000, 2) if xs else None  # noqa: E731
    return {
        "concurrency": concurrency,
        "client": client,
        "body": body,
        "requests": sent,
        "seconds": round(wall, 2),
        "statuses": statuses,
        "throughput_rps": round(len(lat_ok) / wall, 1),
        "p50_ms": q(lat_ok, 50),
        "p95_ms": q(lat_ok, 95),
        "p99_ms": q(lat_ok, 99),
        "p99_503_ms": q(lat_503, 99),
        "max_503_ms": round(max(lat_503) * 1000, 2) if lat_503 else None,
        "client_cpu_ms_per_request": round((time.process_time() - cpu0) * 1000 / max(sent, 1), 3),
    }


def server_latency(url: str, status: str) -> dict:
    """The server's own latency histogram for /v1/predict answers with `status`: count, and the
    share answered within each bucket bound (from /metrics)."""
    import re

    import httpx

    text = httpx.get(url + "/metrics", timeout=30).text
    pat = re.compile(
        r'cnnkit_request_latency_seconds_bucket\{endpoint="/v1/predict",le="([^"]+)",status="' + status + r'"\} (\S+)'
    )
    buckets = {le: float(v) for le, v in pat.findall(text)}
    total = buckets.get("+Inf", 0.0)
    return {
        "count": int(total),
        "share_within_s": {le: round(v / total, 4) for le, v in buckets.items()} if total else {},
    }


def sweep(ckpt: Path, size: int, args) -> dict:
    """Both servers up at once; at each concurrency naive then dynamic, back to back, so that the
    machine's load (shared) drifts as little as possible between the two."""
    pngs = images(size)
    modes = {
        "naive": ["--max-batch", "1", "--max-wait-ms", "0"],
        "dynamic": ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)],
    }
    servers = {}
    try:
        for mode, flags in modes.items():
            servers[mode] = Server(ckpt, *flags, *args.server_flags, "--max-queue", "1024", "--timeout-s", "60")
            load_with(args, servers[mode].url, pngs, 4, 40, 10)  # warm-up
        out: dict[str, list] = {mode: [] for mode in modes}
        for c, rep in [(c, k) for c in args.concurrency for k in range(args.repeat)]:
            for mode, server in servers.items():
                cpu0 = cpu_s(server.proc.pid)
                r = load_with(args, server.url, pngs, c, args.max_requests, args.seconds)
                ok = r["statuses"].get("200", 0)
                r["server_cpu_ms_per_request"] = round((cpu_s(server.proc.pid) - cpu0) * 1000 / ok, 2) if ok else None
                r["load_average"] = [round(v, 2) for v in os.getloadavg()]
                r["repeat"] = rep
                print(
                    f"  {ckpt.stem} {mode:7s} c={c:3d} #{rep}: {r['throughput_rps']:7.1f} req/s  p50 {r['p50_ms']} p95 {r['p95_ms']} "
                    f"p99 {r['p99_ms']} ms  {r['statuses']}  server CPU {r['server_cpu_ms_per_request']} ms/req",
                    flush=True,
                )
                out[mode].append(r)
    finally:
        for server in servers.values():
            server.stop()
    return out


def overload(ckpt: Path, size: int, args) -> dict:
    pngs = images(size)
    max_queue = args.max_batch
    admitted = args.max_batch + max_queue
    server = Server(
        ckpt,
        *args.server_flags,
        "--max-batch",
        str(args.max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--max-queue",
        str(max_queue),
        "--timeout-s",
        "10",
    )
    try:
        load_with(args, server.url, pngs, 4, 40, 10)
        over = load_with(args, server.url, pngs, 4 * admitted, 100_000, args.seconds, retry_503_s=0.05)
        after = load_with(args, server.url, pngs, 1, 50, 10)
        server_503 = server_latency(server.url, "503")
    finally:
        code = server.stop()
    ok = set(over["statuses"]) <= {"200", "503"} and set(after["statuses"]) == {"200"}
    print(
        f"  {ckpt.stem} overload c={4 * admitted}: {over['statuses']} 503 p99 {over['p99_503_ms']} ms; after: {after['statuses']}",
        flush=True,
    )
    print(f"  server-side 503s: {server_503}", flush=True)
    return {
        "server_503": server_503,
        "admitted": admitted,
        "max_queue": max_queue,
        "overload": over,
        "recovery": after,
        "only_200_and_503_then_recovered": ok,
        "exit_code": code,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def soak(ckpt: Path, size: int, args) -> dict:
    pngs = images(size)
    server = Server(
        ckpt,
        *args.server_flags,
        "--max-batch",
        str(args.max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--max-queue",
        "1024",
        "--timeout-s",
        "60",
    )
    try:
        load_with(args, server.url, pngs, 4, 200, 10)
        rss_start = rss_mb(server.proc.pid)
        r = load_with(args, server.url, pngs, args.soak_concurrency, 10**9, args.soak_s)
        rss_end = rss_mb(server.proc.pid)
    finally:
        code = server.stop()
    answered = r["statuses"].get("200", 0)
    print(
        f"  soak {args.soak_s} s c={args.soak_concurrency}: {r['requests']} sent, {answered} answered 200; RSS {rss_start:.0f} -> {rss_end:.0f} MB",
        flush=True,
    )
    return {
        **r,
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "every_request_answered": answered == r["requests"],
        "exit_code": code,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def workers(ckpt: Path, size: int, args) -> dict:
    pngs = images(size)
    out = {}
    for n in args.workers_n:
        server = Server(
            ckpt,
            *args.server_flags,
            "--workers",
            str(n),
            "--max-batch",
            str(args.max_batch),
            "--max-wait-ms",
            str(args.max_wait_ms),
            "--max-queue",
            "1024",
        )
        try:
            load_with(args, server.url, pngs, 4, 40 * n, 10)
            cpu0 = tree_cpu_s(server.proc.pid)
            out[n] = r = load_with(args, server.url, pngs, 32, args.max_requests, args.seconds)
            ok = r["statuses"].get("200", 0)
            r["server_cpu_ms_per_request"] = round((tree_cpu_s(server.proc.pid) - cpu0) * 1000 / max(ok, 1), 2)
            r["load_average"] = round(os.getloadavg()[0], 2)
            print(f"  workers={n}: {r['throughput_rps']} req/s p99 {r['p99_ms']} ms {r['statuses']}", flush=True)
        finally:
            server.stop()
    return out


def repeat_summary(sweep: dict) -> list[str]:
    """One line per concurrency over its repeats: the median speed-up with its range, and in how many
    repeats dynamic batching's p99 was no worse than naive serving's (the issue's target)."""
    lines = [
        "| concurrency | repeats | speed-up median (min-max) | p99 naive median ms | p99 dynamic median ms | repeats with p99 no worse |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for c in sorted({a["concurrency"] for a in sweep["naive"]}):
        pairs = [(a, b) for a, b in zip(sweep["naive"], sweep["dynamic"]) if a["concurrency"] == c]
        sp = [b["throughput_rps"] / a["throughput_rps"] for a, b in pairs if a["throughput_rps"]]
        no_worse = sum(
            b["p99_ms"] is not None and a["p99_ms"] is not None and b["p99_ms"] <= a["p99_ms"] for a, b in pairs
        )
        lines.append(
            f"| {c} | {len(pairs)} | {float(np.median(sp)):.2f}x ({min(sp):.2f}-{max(sp):.2f}) | "
            f"{float(np.median([a['p99_ms'] for a, _ in pairs])):.1f} | {float(np.median([b['p99_ms'] for _, b in pairs])):.1f} | "
            f"{no_worse} of {len(pairs)} |"
        )
    return lines


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [
        "# cnnkit serve: load test (loopback)",
        "",
        f"Machine: {m['model']}, {m['cores']} cores ({m['simd']}); load average at start {m['load_average']} "
        f"(a machine shared with other sessions: timings are contaminated, compare within a run).",
        f"Command: `{res['command']}`. Dynamic batching: --max-batch {res['args']['max_batch']} --max-wait-ms {res['args']['max_wait_ms']}; "
        f"naive: --max-batch 1. Client {res['args'].get('client', 'httpx')}, body {res['args'].get('body', 'multipart')}. Server flags {' '.join(res['args']['server_flags']) or '(defaults)'}. Each point: at most {res['args']['max_requests']} requests or {res['args']['seconds']} s.",
        "",
    ]
    for name, r in res["models"].items():
        lines += [f"## {name}", ""] if "sweep" not in r else []
        if "sweep" in r:
            lines += [
                f"## {name} ({MODELS[name]}x{MODELS[name]}x3, random weights)",
                "",
                "| concurrency | naive req/s | dynamic req/s | speed-up | naive p50 / p95 / p99 ms | dynamic p50 / p95 / p99 ms | server CPU ms/request naive / dynamic | client CPU ms/request | load avg |",
                "|---|---|---|---|---|---|---|---|---|",
            ]

            def tag(point: dict) -> str:
                return f" (#{point['repeat'] + 1})" if res["args"].get("repeat", 1) > 1 else ""

            for a, b in zip(r["sweep"]["naive"], r["sweep"]["dynamic"]):
                sp = b["throughput_rps"] / a["throughput_rps"] if a["throughput_rps"] else float("nan")
                lines.append(
                    f"| {a['concurrency']}{tag(a)} | {a['throughput_rps']} | {b['throughput_rps']} | {sp:.2f}x | {a['p50_ms']} / {a['p95_ms']} / {a['p99_ms']} | "
                    f"{b['p50_ms']} / {b['p95_ms']} / {b['p99_ms']} | {a['server_cpu_ms_per_request']} / {b['server_cpu_ms_per_request']} | {b.get('client_cpu_ms_per_request')} | {b['load_average'][0]} |"
                )
            if res["args"].get("repeat", 1) > 1:
                lines += ["", *repeat_summary(r["sweep"])]
        lines.append("")
        if "overload" in r:
            o = r["overload"]
            lines += [
                f"Overload: {o['overload']['concurrency']} requests in flight against {o['admitted']} admitted (--max-batch + --max-queue {o['max_queue']}), "
                f"{o['overload']['seconds']} s: statuses {o['overload']['statuses']}, 200 p99 {o['overload']['p99_ms']} ms, 503 p99 {o['overload']['p99_503_ms']} ms "
                f"(max {o['overload']['max_503_ms']} ms). Recovery at concurrency 1: {o['recovery']['statuses']} (p99 {o['recovery']['p99_ms']} ms). "
                f"Only 200 and 503, then recovered: **{o['only_200_and_503_then_recovered']}**; exit code on SIGTERM: {o['exit_code']}. "
                f"Server side (its own histogram, /metrics): {o.get('server_503', {}).get('count')} 503s, share answered within "
                f"1 / 2.5 / 5 / 10 ms: {' / '.join(str(o.get('server_503', {}).get('share_within_s', {}).get(k)) for k in ('0.001', '0.0025', '0.005', '0.01'))}.",
                "",
            ]
        if "soak" in r:
            s = r["soak"]
            lines += [
                f"Soak: {s['seconds']} s at concurrency {s['concurrency']}: {s['requests']} requests, statuses {s['statuses']}, "
                f"every request answered: **{s['every_request_answered']}**; server RSS {s['rss_start_mb']} MB -> {s['rss_end_mb']} MB; "
                f"{s['throughput_rps']} req/s, p99 {s['p99_ms']} ms.",
                "",
            ]
        if "workers" in r:
            w = r["workers"]
            lines += [
                "Scale-out on this machine (concurrency 32): "
                + "; ".join(
                    f"{n} worker(s): {v['throughput_rps']} req/s, p99 {v['p99_ms']} ms, {v['statuses']}, "
                    f"server CPU {v.get('server_cpu_ms_per_request')} ms/request, load {v.get('load_average')}"
                    for n, v in w.items()
                ),
                "",
            ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    p.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32, 64])
    p.add_argument("--seconds", type=float, default=8.0, help="time limit per point")
    p.add_argument("--max-requests", type=int, default=2000, help="request limit per point")
    p.add_argument(
        "--repeat", type=int, default=1, help="measure each concurrency this many times (naive, dynamic in turn)"
    )
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    p.add_argument("--soak-seconds", "--soak-s", dest="soak_s", type=float, default=45.0, help="soak length")
    p.add_argument("--soak-concurrency", type=int, default=16)
    p.add_argument(
        "--parts", nargs="+", choices=("sweep", "overload", "soak", "workers"), default=["sweep", "overload", "soak"]
    )
    p.add_argument("--no-extras", action="store_true", help="only the sweep (no overload, soak, workers)")
    p.add_argument("--workers", action="store_true", help="also measure --workers N for each of --workers-n")
    p.add_argument("--workers-n", nargs="+", type=int, default=[1, 2])
    p.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load generator (default raw)")
    p.add_argument("--body", choices=("multipart", "raw"), default="multipart", help="request body (default multipart)")
    p.add_argument("--threads", type=int, help="cnnkit serve --threads (default: torch's)")
    p.add_argument(
        "--backend",
        choices=("eager", "channels-last", "bf16"),
        default="eager",
        help="cnnkit serve --backend, the same for naive and dynamic batching (default eager)",
    )
    p.add_argument("--gil-switch-ms", type=float, help="cnnkit serve --gil-switch-ms (default: the server's)")
    p.add_argument("--device", default=None, help="cnnkit serve --device (e.g. cuda; with --backend eager)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_serve"))
    args = p.parse_args()
    args.server_flags = ["--threads", str(args.threads)] if args.threads else []
    if args.backend != "eager":
        args.server_flags += ["--backend", args.backend]
    if args.device is not None:
        args.server_flags += ["--device", args.device]
    if args.gil_switch_ms is not None:
        args.server_flags += ["--gil-switch-ms", str(args.gil_switch_ms)]
    res = {
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "command": "python benchmarks/bench_serve.py " + " ".join(sys.argv[1:]),
        "args": vars(args),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            print(f"{name}:", flush=True)
            ckpt = make_checkpoint(name, MODELS[name], Path(tmp))
            r = {"sweep": sweep(ckpt, MODELS[name], args)} if "sweep" in args.parts else {}
            if not args.no_extras and name == args.models[0]:  # the extras on the first model only
                for part, fn in (("overload", overload), ("soak", soak)):
                    if part in args.parts:
                        r[part] = fn(ckpt, MODELS[name], args)
                if args.workers or "workers" in args.parts:
                    r["workers"] = workers(ckpt, MODELS[name], args)
            res["models"][name] = r
    res["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    out.with_suffix(".md").write_text(markdown(res))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
