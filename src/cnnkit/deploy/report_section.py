"""report.html's "Deployment" section, from the files the deploy verbs wrote into the run
folder's export/: *.parity.json (cnnkit export), the int8 files' JSON (cnnkit quantize),
bench_infer.json (cnnkit bench-infer) and prune.json (cnnkit prune)."""

from __future__ import annotations

import html
import json
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _pct(v) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else "-"


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def report_section(run_dir) -> tuple[str, str, str] | None:
    """(id, title, html): one table per kind of result found in export/; None without any."""
    export = Path(run_dir) / "export"
    if not export.is_dir():
        return None
    parts = [
        part for part in (_parity(export), _quantization(export), _bench(export), _pruning(export)) if part is not None
    ]
    if not parts:
        return None
    return "deployment", "Deployment", "".join(parts)


def _parity(export: Path) -> str | None:
    """cnnkit export: one row per *.parity.json."""
    parity = [(p, d) for p in sorted(export.glob("*.parity.json")) if (d := _load(p)) is not None]
    if parity:
        rows = [
            [
                p.name.removesuffix(".parity.json") + ".onnx",
                d.get("exporter", "-"),
                d.get("opset", "-"),
                f"{d.get('images', 0)} ({d.get('source', '')})",
                f"{d.get('max_abs_diff', float('nan')):.2e}",
                f"{d.get('mean_abs_diff', float('nan')):.2e}",
                _pct(d.get("top1_agreement")),
                "passed" if d.get("passed") else "FAILED",
            ]
            for p, d in parity
        ]
        return "<h3>ONNX export</h3>" + _table(
            [
                "file",
                "exporter",
                "opset",
                "parity images",
                "max |Δlogit|",
                "mean |Δlogit|",
                "top-1 agreement",
                "parity",
            ],
            rows,
        )
    return None


def _quantization(export: Path) -> str | None:
    """cnnkit quantize: one row per int8 file's JSON."""
    quant = [(p, d) for p in sorted(export.glob("*.int8*.json")) if (d := _load(p)) is not None and "mode" in d]
    if quant:
        rows = [
            [
                Path(d.get("int8", p.name)).name,
                d.get("mode"),
                d.get("calibration", "-"),
                _pct(d.get("accuracy_fp32")),
                _pct(d.get("accuracy_int8")),
                f"{d['drop_points']:+.2f}" if isinstance(d.get("drop_points"), (int, float)) else "-",
                f"{d.get('size_bytes', {}).get('fp32', 0):,} → {d.get('size_bytes', {}).get('int8', 0):,}",
            ]
            for p, d in quant
        ]
        return "<h3>int8 quantization</h3>" + _table(
            ["file", "mode", "calibration", "fp32 accuracy", "int8 accuracy", "drop (points)", "bytes"], rows
        )
    return None


def _bench(export: Path) -> str | None:
    """cnnkit bench-infer: latency, throughput and accuracy per backend."""
    bench = _load(export / "bench_infer.json")
    if bench is not None and isinstance(bench.get("rows"), list):
        base = next((r for r in bench["rows"] if r.get("backend") == "eager" and r.get("available")), None)
        rows = []
        for r in bench["rows"]:
            if not r.get("available"):
                rows.append([r.get("backend"), "unavailable: " + str(r.get("reason", "")), "", "", "", ""])
                continue
            speed = f"{r['throughput_img_s'] / base['throughput_img_s']:.2f}×" if base else "-"
            rows.append(
                [
                    r["backend"],
                    f"{r['latency_ms_p50']:.2f}",
                    f"{r['latency_ms_p95']:.2f}",
                    f"{r['throughput_img_s']:.1f}",
                    speed,
                    _pct(r.get("accuracy")),
                ]
            )
        m = bench.get("machine", {})
        note = f"{bench.get('threads')} threads, batch {bench.get('batch')}, {m.get('cpu', '')} ({' '.join(m.get('simd', []))}), load average {m.get('load_average')}"
        return (
            "<h3>Inference backends (CPU)</h3>"
            + _table(
                [
                    "backend",
                    "p50 ms (batch 1)",
                    "p95 ms",
                    f"images/s (batch {bench.get('batch')})",
                    "vs eager",
                    "accuracy",
                ],
                rows,
            )
            + f'<p class="note">{html.escape(note)}</p>'
        )
    return None


def _pruning(export: Path) -> str | None:
    """cnnkit prune: params, MACs, latency and accuracy before, after pruning and after recovery."""
    prune = _load(export / "prune.json")
    if prune is not None and "before" in prune:
        rows = []
        for key, label in (
            ("before", "before"),
            ("after_pruning", "after pruning"),
            ("after_recovery", "after recovery"),
        ):
            r = prune.get(key)
            if isinstance(r, dict):
                rows.append(
                    [
                        label,
                        f"{r.get('params', 0):,}",
                        f"{r.get('macs', 0):,}",
                        f"{r.get('latency_ms_b1', 0):.2f}",
                        _pct(r.get("accuracy")),
                    ]
                )
        note = f"{prune.get('method')}; pruned checkpoint {prune.get('checkpoint')}; parent {prune.get('parent')}" + (
            f". {prune['note']}" if prune.get("note") else ""
        )
        return (
            "<h3>Pruning</h3>"
            + _table(["stage", "params", "MACs", "latency ms (batch 1, eager)", "accuracy"], rows)
            + f'<p class="note">{html.escape(note)}</p>'
        )
    return None
