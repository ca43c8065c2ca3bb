"""report.html's detection section (listed in report.html.EXTRA_SECTIONS), from the run folder alone:
mAP@0.5 and mAP@[.5:.95] of best.ckpt (summary.json), the per-class AP table, and the PNGs finish_detection
wrote into plots/: precision-recall curves, the best and worst images with their boxes, loss / mAP curves."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any


def _img(path: Path, alt: str, width: int = 480) -> str:
    if not path.is_file():
        return f"<p class='note'>({html.escape(path.name)} is missing)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure style='display:inline-block;margin:0 1em 1em 0'><img src='data:image/png;base64,{data}' "
        f"alt='{html.escape(alt)}' style='width:{width}px'><figcaption>{html.escape(alt)}</figcaption></figure>"
    )


def _summary(run: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if summary.get("task") == "detect" else None


def overview_kpis(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Headline numbers of a detection summary.json for an overview: mAP@0.5 and mAP@[.5:.95]."""
    if summary.get("task") != "detect":
        return []
    split = summary["split"]
    return [(f"{split} mAP@0.5", f"{summary['map_50']:.4f}"), (f"{split} mAP@[.5:.95]", f"{summary['map']:.4f}")]


def report_section(run_dir: str | Path) -> tuple[str, str, str] | None:
    """("detect", title, html) for a detection run folder, None for any other run."""
    run = Path(run_dir)
    s = _summary(run)
    if s is None:
        return None
    kpis = "".join(f"<b>{html.escape(k)}</b> {html.escape(v)}<br>" for k, v in overview_kpis(s))
    out = kpis + (
        f"<p>best.ckpt on the {html.escape(s['split'])} split ({s['num_images']} images): "
        f"<b>mAP@0.5 {s['map_50']:.4f}</b>, mAP@[.5:.95] {s['map']:.4f}, mAR@100 {s['mar_100']:.4f}; "
        f"{s['seconds_per_image'] * 1000:.1f} ms per image at inference; {s['train_seconds']:.0f} s of training.</p>"
        "<table><tr><th>class</th><th>AP@0.5</th><th>AP@[.5:.95]</th></tr>"
    )
    for name, ap in s["ap_per_class"].items():
        ap50 = s.get("ap50_per_class", {}).get(name, float("nan"))
        out += f"<tr><td>{html.escape(name)}</td><td>{ap50:.4f}</td><td>{ap:.4f}</td></tr>"
    out += "</table>"
    plots = run / "plots"
    out += _img(plots / "pr_curves.png", "precision-recall per class at IoU 0.5")
    out += _img(plots / "detect_curves.png", "training losses and validation mAP per epoch", 640)
    out += "<p>True boxes in white, predictions in green with class and score.</p>"
    out += _img(plots / "boxes_good.png", "best images (per-image F1 at score 0.5, IoU 0.5)", 640)
    out += _img(plots / "boxes_bad.png", "worst images", 640)
    return ("detect", "Object detection", out)


def render_markdown(run_dir: str | Path) -> str:
    """report.md of a detection run: the numbers, the per-class table and links to the PNGs in plots/."""
    run = Path(run_dir)
    s = _summary(run)
    if s is None:
        raise ValueError(f"{run}: no detection summary.json")
    lines = [
        f"# Detection run {run.name}",
        "",
        f"best.ckpt on the {s['split']} split ({s['num_images']} images): **mAP@0.5 {s['map_50']:.4f}**, "
        f"mAP@[.5:.95] {s['map']:.4f}, mAR@100 {s['mar_100']:.4f}; {s['seconds_per_image'] * 1000:.1f} ms per "
        f"image at inference; {s['train_seconds']:.0f} s of training.",
        "",
        "| class | AP@0.5 | AP@[.5:.95] |",
        "|---|---:|---:|",
    ]
    for name, ap in s["ap_per_class"].items():
        lines.append(f"| {name} | {s.get('ap50_per_class', {}).get(name, float('nan')):.4f} | {ap:.4f} |")
    lines += [
        "",
        "![precision-recall](plots/pr_curves.png) ![losses and mAP](plots/detect_curves.png)",
        "",
        "Best and worst images (true boxes white, predictions green):",
        "",
        "![good](plots/boxes_good.png) ![bad](plots/boxes_bad.png)",
        "",
    ]
    return "\n".join(lines)
