"""report.html: one self-contained page per run (images inline as base64, no network).

`write_html_report(run_dir)` reads only the run folder (its files and best.ckpt) and
rebuilds the evaluation split from the stored config. Pictures are drawn with NumPy / PIL
and inline SVG rather than matplotlib figures, so the page takes a second or two.
"""

from __future__ import annotations

import base64
import csv
import html
import importlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from cnnkit.errors import DataError
from cnnkit.io_safety import replace_file

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1em 2em 4em}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
nav a{margin-right:1em;font-size:.9em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f0f0f0} td.l,th.l{text-align:left}
pre{background:#f4f4f4;padding:.8em;overflow:auto;font-size:.85em;max-height:30em}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px;text-align:center}
figcaption{font-size:.75em;max-width:200px}
img.px{image-rendering:pixelated}
.kpi{display:inline-block;background:#fff;border:1px solid #ddd;padding:.5em 1em;margin:.2em;border-radius:4px}
.kpi b{font-size:1.3em;display:block}
.note{color:#666;font-size:.85em}
"""


# ---------- small helpers -------------------------------------------------------------


def _png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _img(uri: str, alt: str, width: int | None = None, pixelated: bool = True) -> str:
    w = f' width="{width}"' if width else ""
    cls = ' class="px"' if pixelated else ""
    return f'<img src="{uri}" alt="{html.escape(alt)}"{w}{cls}>'


def _fig(uri: str, caption: str, width: int = 112) -> str:
    return f"<figure>{_img(uri, caption, width)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _rgb(img: np.ndarray) -> np.ndarray:
    from cnnkit.explain.render import to_rgb

    return to_rgb(img)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


# Modules with `report_section(run_dir) -> (id, title, html) | None`: the sections other areas add
# (robustness, deployment...) from the result files they keep in the run folder.
EXTRA_SECTIONS: list[str] = ["cnnkit.robust.report", "cnnkit.deploy.report_section", "cnnkit.tasks.segment.report"]

# ---------- sections -------------------------------------------------------------------


def _confusion_table(names: list[str], counts: list[list[int]], norm: list[list[float]]) -> str:
    if len(names) > 30:
        return '<p class="note">Too many classes for a table; see the picture above and the JSON.</p>'
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"
    rows = []
    for name, crow, nrow in zip(names, counts, norm):
        cells = []
        for c, v in zip(crow, nrow):
            colour = "#fff" if v > 0.55 else "#222"
            cells.append(
                f'<td style="background:rgba(31,119,180,{v:.3f});color:{colour}" title="{c} images">{100 * v:.0f}</td>'
            )
        rows.append(f'<tr><th class="l">{html.escape(name)}</th>{"".join(cells)}</tr>')
    return f'<table class="cm">{head}{"".join(rows)}</table><p class="note">Per cent of each true class (rows); hover for counts.</p>'


def _calibration_note(m: dict, checkpoint: dict) -> str:
    """The sign of the calibration gap as a paragraph (label smoothing named when it explains it)."""
    from cnnkit.evaluate.caveats import calibration_note

    smoothing = float(checkpoint.get("config", {}).get("optim", {}).get("label_smoothing", 0.0) or 0.0)
    note = calibration_note(m, smoothing)
    return f"<p>{html.escape(note)}</p>" if note else ""


def _reliability_svg(bins: list[dict], ece: float) -> str:
    """An inline SVG reliability diagram: accuracy per confidence bin against the diagonal."""
    W, H, pad = 360, 300, 40
    sx = lambda v: pad + v * (W - 2 * pad)  # noqa: E731
    sy = lambda v: H - pad - v * (H - 2 * pad)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img" aria-label="reliability diagram">'
    ]
    parts.append(f'<rect x="{pad}" y="{pad}" width="{W - 2 * pad}" height="{H - 2 * pad}" fill="#fff" stroke="#999"/>')
    for b in bins:
        if not b["count"]:
            continue
        x0, x1 = sx(b["lower"]), sx(b["upper"])
        parts.append(
            f'<rect x="{x0:.1f}" y="{sy(b["accuracy"]):.1f}" width="{x1 - x0 - 1:.1f}" height="{sy(0) - sy(b["accuracy"]):.1f}" fill="#4c72b0">'
            f"<title>confidence {b['lower']:.2f}-{b['upper']:.2f}: {b['count']} images, accuracy {b['accuracy']:.2f}, mean confidence {b['confidence']:.2f}</title></rect>"
        )
        lo, hi = sorted((b["accuracy"], b["confidence"]))
        parts.append(
            f'<rect x="{x0:.1f}" y="{sy(hi):.1f}" width="{x1 - x0 - 1:.1f}" height="{sy(lo) - sy(hi):.1f}" fill="#dd8452" fill-opacity="0.45"/>'
        )
    parts.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#000" stroke-dasharray="4 3"/>')
    for t in (0, 0.5, 1):
        parts.append(f'<text x="{sx(t)}" y="{H - pad + 15}" font-size="11" text-anchor="middle">{t}</text>')
        parts.append(f'<text x="{pad - 6}" y="{sy(t) + 4}" font-size="11" text-anchor="end">{t}</text>')
    parts.append(
        f'<text x="{W / 2}" y="{H - 6}" font-size="12" text-anchor="middle">confidence (top-1 probability)</text>'
    )
    parts.append(
        f'<text x="12" y="{H / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 12 {H / 2})">accuracy</text>'
    )
    parts.append(
        f'<text x="{W / 2}" y="{pad - 12}" font-size="12" text-anchor="middle">ECE {100 * ece:.2f} % (blue: accuracy per confidence bin; orange: gap to its mean confidence)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _heat_grid(maps: np.ndarray, cols: int = 8, scale: int = 3) -> np.ndarray:
    """Channels (C, H, W) side by side as one RGB picture (viridis, shared range)."""
    from cnnkit.explain.render import colorize

    c, h, w = maps.shape
    lo, hi = float(maps.min()), float(maps.max())
    norm = (maps - lo) / (hi - lo) if hi > lo else np.zeros_like(maps)
    rows = -(-c // cols)
    canvas = np.full((rows * (h + 2), min(c, cols) * (w + 2), 3), 255, dtype=np.uint8)
    for i in range(c):
        r, k = divmod(i, cols)
        canvas[r * (h + 2) : r * (h + 2) + h, k * (w + 2) : k * (w + 2) + w] = colorize(norm[i], "viridis")
    return canvas.repeat(scale, 0).repeat(scale, 1)


def _kernel_grid(model: torch.nn.Module) -> tuple[np.ndarray, str] | None:
    from cnnkit.explain.filters import first_conv, kernel_images

    try:
        name, conv = first_conv(model)
    except Exception:  # noqa: BLE001 - a model without convolutions has no filters to show
        return None
    pics = kernel_images(conv)[:64]
    if pics.ndim == 3:
        pics = np.repeat(pics[..., None], 3, -1)
    n, k = len(pics), pics.shape[1]
    cols = min(16, n)
    rows = -(-n // cols)
    canvas = np.full((rows * (k + 1), cols * (k + 1), 3), 255, dtype=np.uint8)
    for i, p in enumerate(pics):
        r, c = divmod(i, cols)
        canvas[r * (k + 1) : r * (k + 1) + k, c * (k + 1) : c * (k + 1) + k] = (p * 255).round().astype(np.uint8)
    scale = max(2, 36 // k)  # about 36 px per kernel
    return canvas.repeat(scale, 0).repeat(
        scale, 1
    ), f"{name}: {conv.weight.shape[0]} kernels of {conv.weight.shape[2]}x{conv.weight.shape[3]}"


def _truth(label: torch.Tensor, names: list[str]) -> str:
    if label.ndim == 1:  # multi-hot
        return "true " + (", ".join(names[i] for i in torch.nonzero(label > 0).flatten().tolist()) or "(none)")
    return f"true {names[int(label)]}"


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------- the page -------------------------------------------------------------------


def write_html_report(
    run_dir: str | os.PathLike, *, gradcam_examples: int = 4, hardest: int = 16, samples_per_class: int = 6
) -> Path:
    """Write <run_dir>/report.html from the run folder alone and return its path."""
    from cnnkit.evaluate.api import evaluate_predictions, predict_split
    from cnnkit.explain.api import explain_batch
    from cnnkit.explain.featuremaps import default_layers, feature_maps
    from cnnkit.explain.render import overlay, upscale
    from cnnkit.inference import Classifier

    t0 = time.perf_counter()
    run = Path(run_dir)
    summary_file = run / "summary.json"
    if not summary_file.is_file():
        raise DataError(f"{run}: no summary.json; is it a finished cnnkit run folder?")
    summary = json.loads(summary_file.read_text())
    if summary.get("task") == "segment":  # no per-image classifier to load: the segmentation section carries the run
        return _write_page(run, summary, [], t0)
    split = "test" if (run / "test_metrics.json").is_file() or summary.get("test") else "val"
    p = predict_split(run, split=split)
    m = evaluate_predictions(p, hardest=hardest)
    names = m["class_names"]
    clf = Classifier(p.model, p.checkpoint)
    images, labels = p.split.images, p.split.labels
    multi = m.get("task") == "multilabel"  # several labels per image: no confusion matrix, top-1 calibration or hardest
    preds = p.logits.argmax(1)  # the top class (for multi-label: the most likely label)
    probs = torch.sigmoid(p.logits) if multi else torch.softmax(p.logits, 1)
    hit = labels[torch.arange(len(preds)), preds] > 0 if multi else preds == labels
    single = '<p class="note">Not shown for multi-label runs.</p>'

    sections: list[tuple[str, str, str]] = []  # (id, title, html)

    # overview
    kpis = (
        [(f"{split} mean AP", f"{m['mean_ap']:.4f}"), ("exact match", _pct(m["exact_match"]))]
        if multi
        else [
            (f"{split} accuracy", _pct(m["accuracy"])),
            ("top-5 accuracy", _pct(m.get("top5_accuracy"))),
            ("loss", f"{m['loss']:.4f}"),
            ("macro F1", f"{m['macro']['f1']:.4f}"),
            ("ECE", _pct(m.get("ece"))),
            ("parameters", f"{summary.get('parameters', 0):,}"),
            ("training", f"{summary.get('train_seconds', 0):.1f} s on {summary.get('device', '?')}"),
        ]
    )
    overview = "".join(f'<span class="kpi">{html.escape(k)}<b>{html.escape(v)}</b></span>' for k, v in kpis)
    overview += (
        f"<p>{html.escape(summary.get('model', '?'))} on {html.escape(summary.get('dataset', '?'))}, {summary.get('epochs', '?')} epochs, "
        f"best epoch {summary.get('best_epoch', '?')} (val {'exact match' if multi else 'accuracy'} {_pct(summary.get('best_val_accuracy'))}). "
        f"Metrics below are on the {split} split ({m['num_samples']} images), from best.ckpt.</p>"
    )
    if split == "val":  # the split that chose the epoch: say what the number is
        from cnnkit.evaluate.caveats import selection_note

        overview += f"<p><b>No test split:</b> this is the {html.escape(selection_note(split) or '')}.</p>"
    sections.append(("overview", "Overview", overview))

    config_file = run / "config.yaml"
    sections.append(
        (
            "config",
            "Configuration",
            f"<pre>{html.escape(config_file.read_text() if config_file.is_file() else '(no config.yaml)')}</pre>",
        )
    )

    # dataset
    sizes = summary.get("split_sizes", {})
    counts_train = summary.get("class_counts", {}).get("train", [])
    counts_eval = labels.sum(0).long().tolist() if multi else torch.bincount(labels, minlength=len(names)).tolist()
    rows = [
        [html.escape(n), str(counts_train[i]) if i < len(counts_train) else "-", str(counts_eval[i])]
        for i, n in enumerate(names)
    ]
    ds_html = f"<p>Images: train {sizes.get('train', '?')}, val {sizes.get('val', '?')}, test {sizes.get('test', '?')}. Input {clf.channels}x{clf.size[0]}x{clf.size[1]}.</p>"
    ds_html += _table(["class", "train", split], rows)
    grid = []
    for c, name in enumerate(names[:20]):
        idx = torch.nonzero(labels[:, c] > 0 if multi else labels == c).flatten()[:samples_per_class].tolist()
        if idx:
            strip = np.concatenate(
                [np.pad(_rgb(images[i].numpy()), ((0, 0), (0, 2), (0, 0)), constant_values=255) for i in idx], axis=1
            )
            grid.append(
                f"<tr><th class='l'>{html.escape(name)}</th><td class='l'>{_img(_png_uri(upscale(strip, 48)), name)}</td></tr>"
            )
    ds_html += f"<h3>Samples per class ({split} split)</h3><table>{''.join(grid)}</table>"
    skipped = _read_rows(run / "skipped.csv")
    if skipped:
        items = "".join(
            f"<li><code>{html.escape(s.get('path', ''))}</code>: {html.escape(s.get('reason', ''))}</li>"
            for s in skipped[:50]
        )
        ds_html += f"<h3>Skipped files ({len(skipped)})</h3><ul>{items}</ul>"
    else:
        ds_html += "<p class='note'>No files were skipped.</p>"
    sections.append(("dataset", "Dataset", ds_html))

    # learning curves
    lc = _file_uri(run / "plots" / "learning_curves.png")
    rows_csv = _read_rows(run / "metrics.csv")
    lc_html = (
        _img(lc, "learning curves", 900, pixelated=False)
        if lc
        else "<p class='note'>(no plots/learning_curves.png)</p>"
    )
    if rows_csv:
        cols = list(rows_csv[0].keys())
        lc_html += _table(cols, [[html.escape(r[c]) for c in cols] for r in rows_csv])
    sections.append(("curves", "Learning curves", lc_html))

    # per class + confusion
    ap = (lambda v: [f"{v['ap']:.3f}"]) if multi else (lambda v: [])
    pc_rows = [
        [html.escape(n), *ap(v), _pct(v["precision"]), _pct(v["recall"]), f"{v['f1']:.3f}", str(v["support"])]
        for n, v in m["per_class"].items()
    ]
    for avg in ("macro",) if multi else ("macro", "weighted"):
        a = m[avg]
        pc_rows.append(
            [
                f"<b>{avg}</b>",
                *([f"{m['mean_ap']:.3f}"] if multi else []),
                _pct(a["precision"]),
                _pct(a["recall"]),
                f"{a['f1']:.3f}",
                str(m["num_samples"]),
            ]
        )
    bars = (
        _file_uri(run / "plots" / "per_class.png") if multi else None
    )  # the trainer's AP / F1 chart of a multi-label run
    pc_html = (_img(bars, "per-class AP and F1", 700, pixelated=False) if bars else "") + _table(
        ["class", *(["AP"] if multi else []), "precision", "recall", "F1", "support"], pc_rows
    )
    sections.append(("per-class", "Per-class metrics", pc_html))
    if multi:
        sections += [
            ("confusion", "Confusion matrix", single),
            ("calibration", "Calibration", single),
            ("hardest", "Hardest examples", single),
        ]
    else:
        cm_png = _file_uri(run / "plots" / "confusion_matrix.png")
        cm_html = (_img(cm_png, "confusion matrix", 520, pixelated=False) if cm_png else "") + _confusion_table(
            names, m["confusion_matrix"], m["confusion_matrix_normalized"]
        )
        sections.append(("confusion", "Confusion matrix", cm_html))
        sections.append(
            (
                "calibration",
                "Calibration",
                _reliability_svg(m["calibration"], m["ece"])
                + f"<p>Expected calibration error {_pct(m['ece'])}: the mean gap between how sure the model is and how often it is right, "
                "over 15 confidence bins weighted by their size. Bars under the diagonal: over-confident.</p>"
                + _calibration_note(m, p.checkpoint),
            )
        )
        figs = [
            _fig(
                _png_uri(upscale(_rgb(images[h["index"]].numpy()), 96)),
                f"true {names[h['true']]}, predicted {names[h['predicted']]} ({h['probability_predicted']:.0%}), loss {h['loss']:.2f}",
            )
            for h in m["hardest"]
        ]
        sections.append(
            (
                "hardest",
                "Hardest examples",
                f"<p>The {len(figs)} {split} images with the highest loss (confidently wrong first).</p><div class='gallery'>{''.join(figs)}</div>",
            )
        )

    # Grad-CAM on a few correct and a few wrong images
    correct = torch.nonzero(hit).flatten()
    wrong = torch.nonzero(~hit).flatten()
    conf = probs.max(1).values
    pick_c = correct[torch.argsort(conf[correct], descending=True)][:gradcam_examples].tolist()
    pick_w = wrong[torch.argsort(conf[wrong], descending=True)][:gradcam_examples].tolist()
    chosen = pick_c + pick_w
    gc_html = ""
    if chosen:
        with torch.enable_grad():  # Grad-CAM needs gradients even if the caller turned them off
            heat, _ = explain_batch(clf, images[chosen], "gradcam", preds[chosen].tolist())
        from cnnkit.explain.attribution import resolve_layer

        layer = resolve_layer(clf.model, None)[0]
        for title, group in (("Correct", pick_c), ("Wrong", pick_w)):
            figs = []
            for i in group:
                k = chosen.index(i)
                img = images[i].numpy()
                pair = np.concatenate(
                    [_rgb(img), np.full((img.shape[1], 2, 3), 255, np.uint8), overlay(img, heat[k])], axis=1
                )
                figs.append(
                    _fig(
                        _png_uri(upscale(pair, 96)),
                        f"{_truth(labels[i], names)}, predicted {names[int(preds[i])]} ({float(conf[i]):.0%})",
                        width=224,
                    )
                )
            if figs:
                gc_html += f"<h3>{title} (most confident)</h3><div class='gallery'>{''.join(figs)}</div>"
        gc_html = (
            f"<p>Grad-CAM for the predicted class at <code>{html.escape(layer)}</code>: image and overlay (red = most important).</p>"
            + gc_html
        )
    sections.append(("gradcam", "Grad-CAM", gc_html or "<p class='note'>No images.</p>"))

    # filters and feature maps
    kg = _kernel_grid(clf.model)
    sections.append(
        (
            "filters",
            "First-layer filters",
            (
                _img(_png_uri(kg[0]), "first-layer filters")
                + f"<p class='note'>{html.escape(kg[1])}; mid grey = 0, light = positive, dark = negative (RGB kernels in colour).</p>"
            )
            if kg
            else "<p class='note'>No convolution.</p>",
        )
    )
    example = pick_c[0] if pick_c else 0
    fm_html = f"<p>One {split} image ({html.escape(_truth(labels[example], names))}), {_img(_png_uri(upscale(_rgb(images[example].numpy()), 64)), 'example')}, through each stage (channels side by side, shared colour range).</p>"
    for layer_out in feature_maps(clf.model, clf.normalize(images[example : example + 1]), default_layers(clf.model)):
        maps = layer_out.output.float().numpy()[:32]
        scale = max(1, 48 // max(1, maps.shape[1]))
        fm_html += f"<h3><code>{html.escape(layer_out.name)}</code> ({layer_out.kind}) output {'x'.join(map(str, layer_out.shape))}</h3>{_img(_png_uri(_heat_grid(maps, scale=scale)), layer_out.name)}"
    sections.append(("featuremaps", "Feature maps", fm_html))

    # model summary
    per_module = [
        [html.escape(n), type(mod).__name__, f"{sum(q.numel() for q in mod.parameters()):,}"]
        for n, mod in clf.model.named_children()
    ]
    sections.append(
        (
            "model",
            "Model",
            _table(["module", "type", "parameters"], per_module, left=2) + f"<pre>{html.escape(str(clf.model))}</pre>",
        )
    )

    return _write_page(run, summary, sections, t0)


def _write_page(run: Path, summary: dict, sections: list[tuple[str, str, str]], t0: float) -> Path:
    """report.html from `sections` plus the other areas' (EXTRA_SECTIONS), written atomically."""
    for module in EXTRA_SECTIONS:  # other areas' sections, from the files they wrote into the run folder
        extra = importlib.import_module(module).report_section(run)
        if extra is not None:
            sections.append(extra)
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>' for sid, title, content in sections
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>cnnkit run {html.escape(run.name)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>Run <code>{html.escape(run.name)}</code></h1><nav>{nav}</nav>{body}"
        f"<p class='note'>Written by cnnkit {html.escape(str(summary.get('cnnkit_version', '')))} in {time.perf_counter() - t0:.1f} s. "
        f"Rebuild with <code>cnnkit report {html.escape(str(run))}</code>.</p></main></body></html>"
    )
    out = run / "report.html"
    replace_file(out, page)  # a full disk or a signal leaves the previous report (or none), never half of one
    return out
