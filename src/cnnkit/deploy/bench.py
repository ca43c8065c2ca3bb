"""`cnnkit bench-infer`: every backend's batch-1 latency (p50/p95), throughput at a batch size and
test accuracy, on the run's own data, with the thread count recorded. A backend that cannot run
here is listed with its reason."""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch

from cnnkit.data.preprocess import Normalize
from cnnkit.deploy.backends import NAMES, Backend, onnx_backend, torch_backend
from cnnkit.deploy.source import load_split, random_images, resolve
from cnnkit.rundir import atomic_write_text

log = logging.getLogger("cnnkit")


def _times(run, x: torch.Tensor, repeats: int, budget_s: float) -> list[float]:
    run(x)  # warm-up (allocations, oneDNN primitive cache, onnxruntime arenas)
    out: list[float] = []
    stop = time.perf_counter() + budget_s
    while len(out) < repeats and (len(out) < 3 or time.perf_counter() < stop):
        t = time.perf_counter()
        run(x)
        out.append(time.perf_counter() - t)
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def measure(
    backend: Backend,
    x1: torch.Tensor,
    xb: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    repeats: int = 30,
    budget_s: float = 10.0,
) -> dict:
    if backend.run is None:
        return {"backend": backend.name, "available": False, "reason": backend.reason}
    try:
        lat = _times(backend.run, x1, repeats, budget_s)
        thr = _times(backend.run, xb, max(3, repeats // 5), budget_s)
        acc = None
        if test is not None:
            xs, ys = test
            correct = sum(
                int((backend.run(xs[i : i + len(xb)]).argmax(1) == ys[i : i + len(xb)]).sum())
                for i in range(0, len(xs), len(xb))
            )
            acc = correct / len(xs)
    except Exception as e:  # noqa: BLE001 - a backend failing at run time is a row with its reason, not a crash
        return {
            "backend": backend.name,
            "available": False,
            "reason": f"failed while running: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}",
        }
    return {
        "backend": backend.name,
        "available": True,
        "latency_ms_p50": 1000 * statistics.median(lat),
        "latency_ms_p95": 1000 * _pct(lat, 0.95),
        "latency_runs": len(lat),
        "throughput_img_s": len(xb) / statistics.median(thr),
        "throughput_runs": len(thr),
        "accuracy": acc,
    }


def ensure_onnx(src, exporter: str = "auto") -> tuple[Path | None, Path | None]:
    """The fp32 and static-int8 files beside the run (exported / quantized when missing or older than the checkpoint)."""
    from cnnkit.deploy.export import export_checkpoint
    from cnnkit.deploy.quantize import quantize

    if src.onnx is not None:  # an ONNX file given: that one (its checkpoint, when found, runs the PyTorch rows)
        fp32 = src.onnx
    else:
        fp32 = src.export_dir / "model.onnx"
        if not fp32.is_file() or fp32.stat().st_mtime < src.checkpoint_path.stat().st_mtime:
            try:
                export_checkpoint(src.checkpoint_path, exporter=exporter)
            except Exception as e:  # noqa: BLE001 - the ONNX rows say why; the PyTorch rows still run
                log.warning("export failed (%s): no onnxruntime rows", e)
                return None, None
    int8 = fp32.with_name(fp32.stem + ".int8.onnx")
    if not int8.is_file() or int8.stat().st_mtime < fp32.stat().st_mtime:
        try:
            quantize(fp32, mode="static", check=False)
        except Exception as e:  # noqa: BLE001
            log.warning("int8 quantization failed (%s): no onnxruntime-int8 row", e)
            return fp32, None
    return fp32, int8


def bench_infer(
    path: str | os.PathLike,
    *,
    threads: int | None = None,
    batch: int = 32,
    backends: list[str] | None = None,
    images: int = 1000,
    repeats: int = 30,
    budget_s: float = 10.0,
    pruned: str | os.PathLike | None = None,
    exporter: str = "auto",
    out: str | os.PathLike | None = None,
) -> dict:
    """Measure the backends (default: all) of a run / checkpoint / ONNX file; writes export/bench_infer.json."""
    from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from cnnkit.deploy.metadata import read_metadata

    wanted = list(backends or NAMES)
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    src = resolve(path)
    fp32, int8 = (None, None)
    if {"onnxruntime", "onnxruntime-int8"} & set(wanted):
        fp32, int8 = ensure_onnx(src, exporter)
    meta = dict(src.checkpoint) if src.checkpoint is not None else read_metadata(src.onnx)  # type: ignore[arg-type]
    norm = Normalize(meta["input"]["mean"], meta["input"]["std"])
    split = load_split(meta, "test", limit=images)
    test = (norm(split.images), split.labels) if split is not None and split.labels.ndim == 1 else None
    x1 = norm(random_images(meta, 1, 1))
    xb = norm(random_images(meta, batch, 2))
    rows = []
    for name in wanted:
        if name in ("onnxruntime", "onnxruntime-int8"):
            b = onnx_backend(name, fp32 if name == "onnxruntime" else int8, threads)
        elif src.checkpoint is None:
            b = Backend(name, None, "an ONNX file alone: PyTorch backends need the checkpoint")
        elif name == "torch-int8":
            b = _torch_int8(model_from_checkpoint(src.checkpoint), meta, norm, xb)
        else:
            b = torch_backend(name, model_from_checkpoint(src.checkpoint), xb)
        log.info("timing %s ...", name)
        rows.append(measure(b, x1, xb, test, repeats=repeats, budget_s=budget_s))
        if (
            name == "torch-int8" and b.run is not None and src.checkpoint is not None
        ):  # parity with fp32 eager, on the test images (or noise)
            from cnnkit.deploy.torch_int8 import parity

            eager = torch_backend("eager", model_from_checkpoint(src.checkpoint)).run
            rows[-1]["parity_vs_eager"] = parity(eager, b.run, test[0] if test is not None else xb)
    if pruned is not None:
        pck = load_checkpoint(resolve_checkpoint(pruned))
        row = measure(
            torch_backend("eager", model_from_checkpoint(pck), xb), x1, xb, test, repeats=repeats, budget_s=budget_s
        )
        row["backend"] = "pruned (eager)"
        rows.append(row)
    result = {
        "source": str(src.path),
        "model": meta["model"]["name"],
        "input": meta["input"],
        "threads": threads,
        "batch": batch,
        "test_images": len(test[0]) if test is not None else 0,
        "machine": host_info(),
        "rows": rows,
    }
    target = Path(out) if out is not None else src.export_dir / "bench_infer.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(result, indent=2) + "\n")
    result["path"] = str(target)
    return result


def _torch_int8(model: torch.nn.Module, meta: dict, norm: Normalize, fallback: torch.Tensor) -> Backend:
    """The torch-int8 backend calibrated on 256 training images (random ones when the data is not reachable)."""
    from cnnkit.deploy.torch_int8 import torch_int8_backend

    train = load_split(meta, "train", limit=256)
    calib = norm(train.images) if train is not None and len(train) else fallback
    return torch_int8_backend(model, calib)


def host_info() -> dict:
    """CPU model, the SIMD flags that decide these numbers, the load average (a shared machine's
    timings mean little without it) and the library versions."""
    import platform

    from cnnkit.deploy.quantize import cpu_flags

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    flags = cpu_flags()
    simd = [
        f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni") if f in flags
    ]
    versions = {"torch": torch.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "simd": simd,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "versions": versions,
    }


def table(result: dict) -> str:
    rows = result["rows"]
    base = next((r for r in rows if r["backend"] == "eager" and r["available"]), None)
    head = f"{'backend':<18} {'p50 ms':>8} {'p95 ms':>8} {'img/s @' + str(result['batch']):>11} {'speed-up':>8} {'accuracy':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if not r["available"]:
            lines.append(f"{r['backend']:<18} unavailable: {r['reason']}")
            continue
        speed = f"{r['throughput_img_s'] / base['throughput_img_s']:.2f}x" if base else "-"
        acc = f"{r['accuracy']:.2%}" if r["accuracy"] is not None else "-"
        lines.append(
            f"{r['backend']:<18} {r['latency_ms_p50']:8.2f} {r['latency_ms_p95']:8.2f} {r['throughput_img_s']:11.1f} {speed:>8} {acc:>9}"
        )
    m = result["machine"]
    lines.append(
        f"{result['threads']} threads, {m['cpu']} ({' '.join(m['simd']) or 'no AVX2'}), load average {m['load_average']}; accuracy on {result['test_images']} test images"
    )
    return "\n".join(lines)
