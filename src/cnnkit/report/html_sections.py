"""report.html's own sections, one function each: `(RunView) -> (id, title, html)`. The view holds
what they share: the run's files, the evaluation split's predictions and metrics, the model."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from cnnkit.errors import DataError
from cnnkit.evaluate.api import Predictions
from cnnkit.inference import Classifier
from cnnkit.report import html_parts as parts

Section = tuple[str, str, str]  # (id, title, html)
SINGLE_ONLY = '<p class="note">Not shown for multi-label runs.</p>'


@dataclass
class RunView:
    """A finished run as the sections see it: its folder and summary, the evaluation split's
    predictions (`p`) and metrics (`m`), and how many examples each gallery shows."""

    run: Path
    summary: dict
    split: str
    p: Predictions
    m: dict
    gradcam_examples: int = 4
    samples_per_class: int = 6

    @cached_property
    def clf(self) -> Classifier:
        return Classifier(self.p.model, self.p.checkpoint)

    @property
    def names(self) -> list[str]:
        return self.m["class_names"]

    @property
    def images(self) -> torch.Tensor:
        return self.p.split.images

    @property
    def labels(self) -> torch.Tensor:
        return self.p.split.labels

    @property
    def multi(self) -> bool:
        """Several labels per image: no confusion matrix, top-1 calibration or hardest examples."""
        return self.m.get("task") == "multilabel"

    @cached_property
    def preds(self) -> torch.Tensor:
        return self.p.logits.argmax(1)  # the top class (for multi-label: the most likely label)

    @cached_property
    def confidence(self) -> torch.Tensor:
        probs = torch.sigmoid(self.p.logits) if self.multi else torch.softmax(self.p.logits, 1)
        return probs.max(1).values

    @cached_property
    def picks(self) -> tuple[list[int], list[int]]:
        """The most confident correct and wrong images (at most gradcam_examples of each)."""
        labels, preds = self.labels, self.preds
        hit = labels[torch.arange(len(preds)), preds] > 0 if self.multi else preds == labels
        correct, wrong = torch.nonzero(hit).flatten(), torch.nonzero(~hit).flatten()
        conf, k = self.confidence, self.gradcam_examples
        return (
            correct[torch.argsort(conf[correct], descending=True)][:k].tolist(),
            wrong[torch.argsort(conf[wrong], descending=True)][:k].tolist(),
        )


def load_view(run: Path, *, hardest: int = 16, gradcam_examples: int = 4, samples_per_class: int = 6) -> RunView:
    """Read the run folder, rebuild its evaluation split (test, or val without one) and score best.ckpt on it."""
    from cnnkit.evaluate.api import evaluate_predictions, predict_split

    summary_file = run / "summary.json"
    if not summary_file.is_file():
        raise DataError(f"{run}: no summary.json; is it a finished cnnkit run folder?")
    summary = json.loads(summary_file.read_text())
    split = "test" if (run / "test_metrics.json").is_file() or summary.get("test") else "val"
    p = predict_split(run, split=split)
    m = evaluate_predictions(p, hardest=hardest)
    return RunView(run, summary, split, p, m, gradcam_examples, samples_per_class)


def _extra_kpis(summary: dict) -> list[tuple[str, str]]:
    """The overview figures other areas add: `overview_kpis(summary)` of an EXTRA_SECTIONS module that has one."""
    import importlib

    from cnnkit.report.html import EXTRA_SECTIONS

    out: list[tuple[str, str]] = []
    for name in EXTRA_SECTIONS:
        add = getattr(importlib.import_module(name), "overview_kpis", None)
        out += add(summary) if add else []
    return out


def overview(v: RunView) -> Section:
    m, summary, split, multi = v.m, v.summary, v.split, v.multi
    kpis = (
        [(f"{split} mean AP", f"{m['mean_ap']:.4f}"), ("exact match", parts.pct(m["exact_match"]))]
        if multi
        else [
            (f"{split} accuracy", parts.pct(m["accuracy"])),
            ("top-5 accuracy", parts.pct(m.get("top5_accuracy"))),
            ("loss", f"{m['loss']:.4f}"),
            ("macro F1", f"{m['macro']['f1']:.4f}"),
            ("ECE", parts.pct(m.get("ece"))),
            ("parameters", f"{summary.get('parameters', 0):,}"),
            ("training", f"{summary.get('train_seconds', 0):.1f} s on {summary.get('device', '?')}"),
        ]
    )
    kpis[1:1] = _extra_kpis(summary)  # e.g. an adversarially trained run's robust accuracy
    out = "".join(f'<span class="kpi">{html.escape(k)}<b>{html.escape(val)}</b></span>' for k, val in kpis)
    out += (
        f"<p>{html.escape(summary.get('model', '?'))} on {html.escape(summary.get('dataset', '?'))}, {summary.get('epochs', '?')} epochs, "
        f"best epoch {summary.get('best_epoch', '?')} (val {'exact match' if multi else 'accuracy'} {parts.pct(summary.get('best_val_accuracy'))}). "
        f"Metrics below are on the {split} split ({m['num_samples']} images), from best.ckpt.</p>"
    )
    if split == "val":  # the split that chose the epoch: say what the number is
        from cnnkit.evaluate.caveats import selection_note

        out += f"<p><b>No test split:</b> this is the {html.escape(selection_note(split) or '')}.</p>"
    return "overview", "Overview", out


def configuration(v: RunView) -> Section:
    return config_section(v.run)


def config_section(run: Path) -> Section:
    """The run's config.yaml as written: every key, the task's own sections (segment:, gan:, ...) included."""
    config_file = run / "config.yaml"
    text = config_file.read_text() if config_file.is_file() else "(no config.yaml)"
    return "config", "Configuration", f"<pre>{html.escape(text)}</pre>"


def dataset(v: RunView) -> Section:
    names, labels, split = v.names, v.labels, v.split
    sizes = v.summary.get("split_sizes", {})
    counts_train = v.summary.get("class_counts", {}).get("train", [])
    counts_eval = labels.sum(0).long().tolist() if v.multi else torch.bincount(labels, minlength=len(names)).tolist()
    rows = [
        [html.escape(n), str(counts_train[i]) if i < len(counts_train) else "-", str(counts_eval[i])]
        for i, n in enumerate(names)
    ]
    out = f"<p>Images: train {sizes.get('train', '?')}, val {sizes.get('val', '?')}, test {sizes.get('test', '?')}. Input {v.clf.channels}x{v.clf.size[0]}x{v.clf.size[1]}.</p>"
    out += parts.table(["class", "train", split], rows)
    out += f"<h3>Samples per class ({split} split)</h3><table>{''.join(_sample_rows(v))}</table>"
    return "dataset", "Dataset", out + _skipped(v.run)


def _sample_rows(v: RunView) -> list[str]:
    """One table row per class (the first 20): a strip of its first images."""
    from cnnkit.explain.render import upscale

    rows = []
    for c, name in enumerate(v.names[:20]):
        idx = torch.nonzero(v.labels[:, c] > 0 if v.multi else v.labels == c).flatten()[: v.samples_per_class]
        if len(idx):
            strip = np.concatenate(
                [
                    np.pad(parts.rgb(v.images[i].numpy()), ((0, 0), (0, 2), (0, 0)), constant_values=255)
                    for i in idx.tolist()
                ],
                axis=1,
            )
            rows.append(
                f"<tr><th class='l'>{html.escape(name)}</th><td class='l'>{parts.img(parts.png_uri(upscale(strip, 48)), name)}</td></tr>"
            )
    return rows


def _skipped(run: Path) -> str:
    skipped = parts.read_rows(run / "skipped.csv")
    if not skipped:
        return "<p class='note'>No files were skipped.</p>"
    items = "".join(
        f"<li><code>{html.escape(s.get('path', ''))}</code>: {html.escape(s.get('reason', ''))}</li>"
        for s in skipped[:50]
    )
    return f"<h3>Skipped files ({len(skipped)})</h3><ul>{items}</ul>"


def curves(v: RunView) -> Section:
    lc = parts.file_uri(v.run / "plots" / "learning_curves.png")
    rows_csv = parts.read_rows(v.run / "metrics.csv")
    out = (
        parts.img(lc, "learning curves", 900, pixelated=False)
        if lc
        else "<p class='note'>(no plots/learning_curves.png)</p>"
    )
    if rows_csv:
        cols = list(rows_csv[0].keys())
        out += parts.table(cols, [[html.escape(r[c]) for c in cols] for r in rows_csv])
    return "curves", "Learning curves", out


def per_class(v: RunView) -> Section:
    m, multi = v.m, v.multi
    ap = (lambda c: [f"{c['ap']:.3f}"]) if multi else (lambda c: [])
    rows = [
        [html.escape(n), *ap(c), parts.pct(c["precision"]), parts.pct(c["recall"]), f"{c['f1']:.3f}", str(c["support"])]
        for n, c in m["per_class"].items()
    ]
    for avg in ("macro",) if multi else ("macro", "weighted"):
        a = m[avg]
        rows.append(
            [
                f"<b>{avg}</b>",
                *([f"{m['mean_ap']:.3f}"] if multi else []),
                parts.pct(a["precision"]),
                parts.pct(a["recall"]),
                f"{a['f1']:.3f}",
                str(m["num_samples"]),
            ]
        )
    bars = parts.file_uri(v.run / "plots" / "per_class.png") if multi else None  # the trainer's AP / F1 chart
    out = (parts.img(bars, "per-class AP and F1", 700, pixelated=False) if bars else "") + parts.table(
        ["class", *(["AP"] if multi else []), "precision", "recall", "F1", "support"], rows
    )
    return "per-class", "Per-class metrics", out


def confusion(v: RunView) -> Section:
    if v.multi:
        return "confusion", "Confusion matrix", SINGLE_ONLY
    cm_png = parts.file_uri(v.run / "plots" / "confusion_matrix.png")
    out = (parts.img(cm_png, "confusion matrix", 520, pixelated=False) if cm_png else "") + parts.confusion_table(
        v.names, v.m["confusion_matrix"], v.m["confusion_matrix_normalized"]
    )
    return "confusion", "Confusion matrix", out


def calibration(v: RunView) -> Section:
    if v.multi:
        return "calibration", "Calibration", SINGLE_ONLY
    m = v.m
    out = (
        parts.reliability_svg(m["calibration"], m["ece"])
        + f"<p>Expected calibration error {parts.pct(m['ece'])}: the mean gap between how sure the model is and how often it is right, "
        "over 15 confidence bins weighted by their size. Bars under the diagonal: over-confident.</p>"
        + parts.calibration_paragraph(m, v.p.checkpoint)
    )
    return "calibration", "Calibration", out


def hardest(v: RunView) -> Section:
    if v.multi:
        return "hardest", "Hardest examples", SINGLE_ONLY
    from cnnkit.explain.render import upscale

    names = v.names
    figs = [
        parts.fig(
            parts.png_uri(upscale(parts.rgb(v.images[h["index"]].numpy()), 96)),
            f"true {names[h['true']]}, predicted {names[h['predicted']]} ({h['probability_predicted']:.0%}), loss {h['loss']:.2f}",
        )
        for h in v.m["hardest"]
    ]
    out = f"<p>The {len(figs)} {v.split} images with the highest loss (confidently wrong first).</p><div class='gallery'>{''.join(figs)}</div>"
    return "hardest", "Hardest examples", out


def gradcam(v: RunView) -> Section:
    """Grad-CAM on the most confident correct and wrong images."""
    from cnnkit.explain.api import explain_batch
    from cnnkit.explain.attribution import resolve_layer

    pick_c, pick_w = v.picks
    chosen = pick_c + pick_w
    if not chosen:
        return "gradcam", "Grad-CAM", "<p class='note'>No images.</p>"
    with torch.enable_grad():  # Grad-CAM needs gradients even if the caller turned them off
        heat, _ = explain_batch(v.clf, v.images[chosen], "gradcam", v.preds[chosen].tolist())
    layer = resolve_layer(v.clf.model, None)[0]
    out = f"<p>Grad-CAM for the predicted class at <code>{html.escape(layer)}</code>: image and overlay (red = most important).</p>"
    for title, group in (("Correct", pick_c), ("Wrong", pick_w)):
        figs = [_gradcam_figure(v, i, heat[chosen.index(i)]) for i in group]
        if figs:
            out += f"<h3>{title} (most confident)</h3><div class='gallery'>{''.join(figs)}</div>"
    return "gradcam", "Grad-CAM", out


def _gradcam_figure(v: RunView, i: int, heat: np.ndarray) -> str:
    from cnnkit.explain.render import overlay, upscale

    image = v.images[i].numpy()
    pair = np.concatenate(
        [parts.rgb(image), np.full((image.shape[1], 2, 3), 255, np.uint8), overlay(image, heat)], axis=1
    )
    caption = (
        f"{parts.truth(v.labels[i], v.names)}, predicted {v.names[int(v.preds[i])]} ({float(v.confidence[i]):.0%})"
    )
    return parts.fig(parts.png_uri(upscale(pair, 96)), caption, width=224)


def filters(v: RunView) -> Section:
    kg = parts.kernel_grid(v.clf.model)
    if not kg:
        return "filters", "First-layer filters", "<p class='note'>No convolution.</p>"
    out = (
        parts.img(parts.png_uri(kg[0]), "first-layer filters")
        + f"<p class='note'>{html.escape(kg[1])}; mid grey = 0, light = positive, dark = negative (RGB kernels in colour).</p>"
    )
    return "filters", "First-layer filters", out


def featuremaps(v: RunView) -> Section:
    """One image (the most confident correct one) through each stage."""
    from cnnkit.explain.featuremaps import default_layers, feature_maps
    from cnnkit.explain.render import upscale

    pick_c = v.picks[0]
    example = pick_c[0] if pick_c else 0
    picture = parts.img(parts.png_uri(upscale(parts.rgb(v.images[example].numpy()), 64)), "example")
    out = f"<p>One {v.split} image ({html.escape(parts.truth(v.labels[example], v.names))}), {picture}, through each stage (channels side by side, shared colour range).</p>"
    model, x = v.clf.model, v.clf.normalize(v.images[example : example + 1])
    for layer_out in feature_maps(model, x, default_layers(model)):
        maps = layer_out.output.float().numpy()[:32]
        scale = max(1, 48 // max(1, maps.shape[1]))
        out += f"<h3><code>{html.escape(layer_out.name)}</code> ({layer_out.kind}) output {'x'.join(map(str, layer_out.shape))}</h3>{parts.img(parts.png_uri(parts.heat_grid(maps, scale=scale)), layer_out.name)}"
    return "featuremaps", "Feature maps", out


def model(v: RunView) -> Section:
    per_module = [
        [html.escape(n), type(mod).__name__, f"{sum(q.numel() for q in mod.parameters()):,}"]
        for n, mod in v.clf.model.named_children()
    ]
    out = (
        parts.table(["module", "type", "parameters"], per_module, left=2)
        + f"<pre>{html.escape(str(v.clf.model))}</pre>"
    )
    return "model", "Model", out


SECTIONS = [
    overview,
    configuration,
    dataset,
    curves,
    per_class,
    confusion,
    calibration,
    hardest,
    gradcam,
    filters,
    featuremaps,
    model,
]
