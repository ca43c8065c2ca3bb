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


def overview_kpis(summary: dict) -> list[tuple[str, str]]:
    """report.html overview's figures for an adversarially trained run (summary.json's `robust`): the robust accuracy."""
    r = summary.get("robust")
    if not r:
        return []
    return [(f"{r['attack']} accuracy at eps {r['eps']:.3g}", f"{100 * r['robust_accuracy']:.2f} %")]


def _trained_note(run_dir: Path) -> str:
    """A sentence on the run's adversarial training and its clean vs robust accuracy (summary.json), or ''."""
    try:
        s = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return ""
    a, r = s.get("adversarial_training"), s.get("robust")
    if not a or not r:
        return ""
    attack = "FGSM from a random start" if a["method"] == "fgsm-rs" else f"PGD-{a['steps']}"
    warmup = f", eps warm-up over {a['warmup_epochs']} epochs" if a.get("warmup_epochs") else ""
    share = f", {100 * a['fraction']:.0f} % of each batch" if a.get("fraction", 1) < 1 else ""
    return (
        f"<p><b>Adversarially trained</b> ({html.escape(attack)} at eps {a['eps']:.4g}, step {a['step_size']:.4g}{warmup}{share}). "
        f"At the end of training, on {int(r['n'])} {html.escape(str(r['split']))} images: clean accuracy "
        f"<b>{100 * r['clean_accuracy']:.2f} %</b>, under {html.escape(r['attack'])} at eps {r['eps']:.4g} "
        f"<b>{100 * r['robust_accuracy']:.2f} %</b>.</p>"
    )


def report_section(run_dir) -> tuple[str, str, str] | None:
    """(id, title, html) with the accuracy table and plot, the warnings and three example attacks; None without results."""
    folder = Path(run_dir) / "robust"
    try:
        r = json.loads((folder / "robust.json").read_text())
    except (OSError, ValueError):
        return None
    restarts = r.get("restarts", 1)
    parts = [
        _trained_note(Path(run_dir)),
        f"<p>Accuracy under FGSM and PGD-{int(r['steps'])} ({int(restarts)} restart{'s' if restarts != 1 else ''}, L&infin;, step 2.5&middot;eps/steps) "
        f"on {int(r['n'])} images of the {html.escape(str(r.get('dataset', '')))} {html.escape(str(r.get('split', '')))} split (seeded subset). "
        "eps is in pixel units of the 0&ndash;1 image, before the model's normalisation.</p>",
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
