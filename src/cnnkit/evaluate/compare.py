"""`cnnkit compare RUN_A RUN_B ...`: key numbers side by side, and per-class differences."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import DataError


@dataclass
class RunNumbers:
    name: str
    path: Path
    summary: dict
    metrics: dict  # test_metrics.json (or val_metrics.json)
    split: str


def read_run(path: str | os.PathLike) -> RunNumbers:
    """A run folder's summary and final metrics; errors say what is missing."""
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{p}: not a run folder")
    summary_file = p / "summary.json"
    if not summary_file.is_file():
        raise DataError(f"{p}: no summary.json; is it a finished cnnkit run folder?")
    summary = json.loads(summary_file.read_text())
    for split in ("test", "val"):
        f = p / f"{split}_metrics.json"
        if f.is_file():
            return RunNumbers(p.name, p, summary, json.loads(f.read_text()), split)
    raise DataError(f"{p}: no test_metrics.json or val_metrics.json")


def compare_runs(paths: list[str | os.PathLike]) -> list[RunNumbers]:
    if len(paths) < 2:
        raise DataError("give at least two run folders to compare")
    return [read_run(p) for p in paths]


def _ece(m: dict) -> float | None:
    if "ece" in m:
        return m["ece"]
    return None


ROWS = [
    ("model", lambda r: r.summary.get("model", "?")),
    ("dataset", lambda r: f"{r.summary.get('dataset', '?')} ({r.split})"),
    ("parameters", lambda r: f"{r.summary['parameters']:,}" if "parameters" in r.summary else "?"),
    ("epochs", lambda r: str(r.summary.get("epochs", "?"))),
    ("train seconds", lambda r: f"{r.summary['train_seconds']:.1f}" if "train_seconds" in r.summary else "?"),
    ("accuracy", lambda r: f"{r.metrics['accuracy']:.2%}" if "accuracy" in r.metrics else "-"),
    ("top-5 accuracy", lambda r: f"{r.metrics['top5_accuracy']:.2%}" if "top5_accuracy" in r.metrics else "-"),
    ("loss", lambda r: f"{r.metrics['loss']:.4f}"),
    ("macro F1", lambda r: f"{r.metrics['macro']['f1']:.4f}"),
    ("weighted F1", lambda r: f"{r.metrics['weighted']['f1']:.4f}" if "weighted" in r.metrics else "-"),
    ("ECE", lambda r: f"{_ece(r.metrics):.2%}" if _ece(r.metrics) is not None else "-"),
    ("test images", lambda r: str(r.metrics["num_samples"])),
]
MULTILABEL_ROWS = [  # shown when a run is multi-label (several labels per image)
    ("mean AP", lambda r: f"{r.metrics['mean_ap']:.4f}" if "mean_ap" in r.metrics else "-"),
    ("exact match", lambda r: f"{r.metrics['exact_match']:.2%}" if "exact_match" in r.metrics else "-"),
]


def format_comparison(runs: list[RunNumbers]) -> str:
    """A table of key numbers (one column per run), then per-class F1 of each run and its
    difference from the first run (when the class names match)."""
    names = [r.name for r in runs]
    rows = ROWS + (MULTILABEL_ROWS if any(r.metrics.get("task") == "multilabel" for r in runs) else [])
    table = [(label, [get(r) for r in runs]) for label, get in rows]
    label_w = max(len(label) for label, _ in rows) + 2
    col_w = max(10, *(len(n) + 2 for n in names), *(len(v) + 2 for _, vals in table for v in vals))
    out = ["".ljust(label_w) + "".join(n.rjust(col_w) for n in names)]
    out += [label.ljust(label_w) + "".join(v.rjust(col_w) for v in vals) for label, vals in table]
    base = runs[0]
    classes = base.metrics["class_names"]
    same = [r for r in runs[1:] if r.metrics["class_names"] == classes]
    other = [r.name for r in runs[1:] if r.metrics["class_names"] != classes]
    if same:
        out += ["", f"per-class F1 (difference from {base.name} in brackets)"]
        cw = max(8, *(len(c) + 2 for c in classes))
        col_w = max(10, len(base.name) + 2)
        out.append(
            "class".ljust(cw) + base.name.rjust(col_w) + "".join(r.name.rjust(max(20, len(r.name) + 2)) for r in same)
        )
        for c in classes:
            f0 = base.metrics["per_class"][c]["f1"]
            cells = [f"{f0:.4f}".rjust(col_w)]
            for r in same:
                f = r.metrics["per_class"][c]["f1"]
                cells.append(f"{f:.4f} ({f - f0:+.4f})".rjust(max(20, len(r.name) + 2)))
            out.append(c.ljust(cw) + "".join(cells))
        diffs = [
            (r.metrics["per_class"][c]["f1"] - base.metrics["per_class"][c]["f1"], c, r.name)
            for r in same
            for c in classes
        ]
        d, c, name = max(diffs, key=lambda t: abs(t[0]))
        out.append(f"largest change: class {c} in {name}, F1 {d:+.4f}")
    if other:
        out += ["", f"not compared per class (different classes from {base.name}): {', '.join(other)}"]
    return "\n".join(out)
