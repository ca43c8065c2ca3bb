"""report.html's GAN section (listed in report.html.EXTRA_SECTIONS), from the run folder alone: the last
epoch's numbers, its sample grid (fixed noise), the first grid beside it, the animated progression
(samples/progress.gif), the loss / D-output curves, and the quality numbers (quality.json, gan.score_with) or
how to get them."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return f"<p class='note'>({html.escape(path.name)} is missing)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = "gif" if path.suffix == ".gif" else "png"
    return (
        f"<figure style='display:inline-block;margin:0 1em 1em 0'><img src='data:image/{kind};base64,{data}' "
        f"alt='{html.escape(alt)}' style='width:320px;image-rendering:pixelated'><figcaption>{html.escape(alt)}"
        "</figcaption></figure>"
    )


def report_section(run_dir: str | Path) -> tuple[str, str, str] | None:
    """("gan", title, html) for a GAN run folder, None for any other run."""
    run = Path(run_dir)
    try:
        summary = json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if summary.get("task") != "gan":
        return None
    last = summary.get("final") or {}
    grids = sorted((run / "samples").glob("epoch_*.png"))
    out = (
        f"<p>DCGAN on {html.escape(str(summary.get('dataset')))} ({summary.get('images')} images, "
        f"{'x'.join(map(str, summary.get('shape', [])))}), {summary.get('epochs')} epochs in "
        f"{summary.get('train_seconds', 0):.0f} s of training."
    )
    if last:
        out += (
            f" Last epoch: discriminator loss {last['loss_d']:.3f}, generator loss {last['loss_g']:.3f}, "
            f"D(x) {last['d_real']:.3f}, D(G(z)) {last['d_fake']:.3f} (0.5 each: D cannot tell)."
        )
    out += "</p>"
    if grids:
        out += _img(grids[-1], f"samples after epoch {len(grids)} (fixed noise)")
        if len(grids) > 1:
            out += _img(grids[0], "samples after epoch 1 (same noise)")
    if len(grids) > 1 and (run / "samples" / "progress.gif").is_file():
        out += _img(run / "samples" / "progress.gif", f"progression over {len(grids)} epochs (same noise)")
    out += _img(run / "plots" / "gan_curves.png", "losses and discriminator outputs per epoch")
    return ("gan", "Generated images (DCGAN)", out + _quality(run))


def _quality(run: Path) -> str:
    """quality.json's numbers (written when gan.score_with names a classifier), or how to compute them."""
    try:
        q = json.loads((run / "quality.json").read_text())
    except (OSError, ValueError):
        return (
            "<p class='note'>Quality numbers: <code>cnnkit generate RUN --n 2000 --out DIR --score CLASSIFIER</code> "
            "(or <code>gan.score_with</code> at training time) gives the classifier-FID (a cnnkit classifier's "
            "features, not Inception's) with its real-vs-real floor and the share of each class among the samples.</p>"
        )
    shares = ", ".join(f"{html.escape(str(k))}: {100 * v:.1f}%" for k, v in q["class_shares"].items())
    asked = q.get("asked_class_share")
    history = q.get("history") or []
    by_epoch = (
        " Classifier-FID by epoch: " + ", ".join(f"{h['epoch']}: {h['fid']:.3f}" for h in history) + "."
        if len(history) > 1
        else ""
    )
    return (
        f"<p>Quality of {q['n_generated']} samples, judged by the classifier {html.escape(str(q['classifier']))} "
        f"(classifier-FID: its features, not Inception's): <b>FID {q['fid']:.3f}</b>, against the real-vs-real "
        f"floor {q['fid_real_floor']:.3f} and the untrained generator's {q['fid_untrained_ceiling']:.3f}. "
        f"Share of each class among the samples: {shares}."
        + (f" In the class they were generated for: {100 * asked:.1f}%." if asked is not None else "")
        + by_epoch
        + "</p>"
    )
