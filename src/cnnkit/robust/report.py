"""report.html's "Robustness" section, from the files `cnnkit robust-eval` (or evaluate --robust) wrote into RUN/robust/."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


def _img(path: Path, alt: str, width: int) -> str:
    if not path.is_file():
        return ""
    uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="{uri}" alt="{html.escape(alt)}" width="{width}">'


def report_section(run_dir) -> tuple[str, str, str] | None:
    """(id, title, html) with the accuracy table and plot, the warnings and three example attacks; None without results."""
    folder = Path(run_dir) / "robust"
    try:
        r = json.loads((folder / "robust.json").read_text())
    except (OSError, ValueError):
        return None
    restarts = r.get("restarts", 1)
    parts = [
        f"<p>Accuracy under FGSM and PGD-{int(r['steps'])} ({int(restarts)} restart{'s' if restarts != 1 else ''}, L&infin;, step 2.5&middot;eps/steps) "
        f"on {int(r['n'])} images of the {html.escape(str(r.get('dataset', '')))} {html.escape(str(r.get('split', '')))} split (seeded subset). "
        "eps is in pixel units of the 0&ndash;1 image, before the model's normalisation.</p>"
    ]
    parts.extend(f'<p style="color:#b00020"><b>Warning:</b> {html.escape(w)}</p>' for w in r.get("warnings", []))
    rows = "".join(
        f"<tr><td>{e['eps']:.4g}</td><td>{e['eps'] * 255:.3g}</td><td>{100 * e['fgsm']:.1f} %</td><td>{100 * e['pgd']:.1f} %</td></tr>"
        for e in r["rows"]
    )
    parts.append(f"<table><tr><th>eps</th><th>eps&times;255</th><th>FGSM</th><th>PGD</th></tr>{rows}</table>")
    parts.append(_img(folder / "accuracy_vs_eps.png", "accuracy against eps", 520))
    examples = [_img(folder / e["file"], f"attack on a {e['true']} image", 600) for e in r.get("examples", [])[:3]]
    if examples:
        parts.append(
            "<h3>Example attacks (original | amplified perturbation | adversarial)</h3>"
            + "".join(f"<div>{x}</div>" for x in examples)
        )
    return ("robustness", "Robustness", "".join(parts))
