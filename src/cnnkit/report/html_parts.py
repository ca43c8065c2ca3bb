"""report.html's building blocks: the page's CSS, inline images and tables, and the pictures drawn
with NumPy / PIL and SVG (no matplotlib figures, so the page takes a second or two)."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np
import torch

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


def png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def img(uri: str, alt: str, width: int | None = None, pixelated: bool = True) -> str:
    w = f' width="{width}"' if width else ""
    cls = ' class="px"' if pixelated else ""
    return f'<img src="{uri}" alt="{html.escape(alt)}"{w}{cls}>'


def fig(uri: str, caption: str, width: int = 112) -> str:
    return f"<figure>{img(uri, caption, width)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def rgb(img: np.ndarray) -> np.ndarray:
    from cnnkit.explain.render import to_rgb

    return to_rgb(img)


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


# ---------- pictures -------------------------------------------------------------------


def confusion_table(names: list[str], counts: list[list[int]], norm: list[list[float]]) -> str:
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


def calibration_paragraph(m: dict, checkpoint: dict) -> str:
    """The sign of the calibration gap as a paragraph (label smoothing named when it explains it)."""
    from cnnkit.evaluate.caveats import calibration_note

    smoothing = float(checkpoint.get("config", {}).get("optim", {}).get("label_smoothing", 0.0) or 0.0)
    note = calibration_note(m, smoothing)
    return f"<p>{html.escape(note)}</p>" if note else ""


def reliability_svg(bins: list[dict], ece: float) -> str:
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


def heat_grid(maps: np.ndarray, cols: int = 8, scale: int = 3) -> np.ndarray:
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


def kernel_grid(model: torch.nn.Module) -> tuple[np.ndarray, str] | None:
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


def truth(label: torch.Tensor, names: list[str]) -> str:
    if label.ndim == 1:  # multi-hot
        return "true " + (", ".join(names[i] for i in torch.nonzero(label > 0).flatten().tolist()) or "(none)")
    return f"true {names[int(label)]}"


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
