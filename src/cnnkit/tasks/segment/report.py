"""report.html's segmentation section (listed in EXTRA_SECTIONS), from the run folder's files alone:
the headline numbers, per-class IoU / Dice / precision / recall, the pixel confusion matrix and the
sample sheet (best and worst images: image | truth | prediction | errors)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p class='note'>({html.escape(path.name)} is missing)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt)}' style='max-width:100%;image-rendering:pixelated'>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def report_section(run_dir: str | Path) -> tuple[str, str, str] | None:
    """("segmentation", title, html) for a segmentation run folder, None for any other run."""
    run = Path(run_dir)
    summary_file = run / "summary.json"
    if not summary_file.is_file():
        return None
    summary = json.loads(summary_file.read_text())
    if summary.get("task") != "segment":
        return None
    split = "test" if summary.get("test") else "val"
    metrics_file = run / f"{split}_metrics.json"
    if not metrics_file.is_file():
        return ("segmentation", "Segmentation", f"<p class='note'>No {split}_metrics.json in this run folder.</p>")
    m = json.loads(metrics_file.read_text())
    names = m["class_names"]
    out = (
        f"<p>{html.escape(str(summary.get('model')))} on {html.escape(str(summary.get('dataset')))}: on the {split} split "
        f"({m['num_samples']} images, {m['num_pixels']:,} labelled pixels) from best.ckpt, "
        f"<b>mIoU {m['miou']:.4f}</b>, Dice {m['dice']:.4f}, pixel accuracy {_pct(m['pixel_accuracy'])}"
        + (" (optimistic: this split chose the epoch)" if split == "val" else "")
        + ".</p>"
    )
    out += _img(run / "plots" / "learning_curves.png", "learning curves (accuracy: pixel accuracy)")
    rows = [
        [
            html.escape(n),
            f"{v['iou']:.4f}",
            f"{v['dice']:.4f}",
            _pct(v["precision"]),
            _pct(v["recall"]),
            f"{v['support']:,}",
        ]
        for n, v in m["per_class"].items()
    ]
    out += "<h3>Per class</h3>" + _table(["class", "IoU", "Dice", "precision", "recall", "pixels"], rows)
    if len(names) <= 30:
        cm = m["confusion_matrix"]
        cm_rows = [[html.escape(n), *(f"{c:,}" for c in row)] for n, row in zip(names, cm)]
        out += "<h3>Pixel confusion matrix (rows: truth, columns: prediction)</h3>" + _table(
            ["truth \\ predicted", *names], cm_rows
        )
    samples = m.get("samples")
    if samples:
        acc = {p["index"]: p["pixel_accuracy"] for p in m["per_image"]}
        which = ", ".join(f"#{i} ({_pct(acc[i])})" for i in samples["indices"])
        out += (
            f"<h3>Best and worst {split} images</h3><p>Each row: image | truth | prediction | errors (red wrong, grey "
            f"unlabelled); images {which}, best first.</p>" + _img(run / samples["file"], "segmentation samples")
        )
    return ("segmentation", "Segmentation", out)
