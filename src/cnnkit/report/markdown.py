"""report.md: a short human summary of a run, with its numbers and plots."""

from __future__ import annotations

from pathlib import Path

from cnnkit.config import Config
from cnnkit.data.types import SkippedFile


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _balance_line(summary: dict) -> list[str]:
    """The class-imbalance sentence: ratio of the training counts and the correction used."""
    b = summary.get("class_balance")
    if not b:
        return []
    fixes = []
    if b.get("class_weights", "none") != "none":
        fixes.append(f"class-weighted loss ({b['class_weights']})")
    if b.get("balance", "none") == "sampler":
        fixes.append("balanced sampling of each epoch")
    elif b.get("balance", "none") == "oversample":
        fixes.append("rare classes oversampled (the train column counts the repeats)")
    return [
        "",
        f"Class balance: the largest training class has {b['imbalance_ratio']:.3g}x the images of the smallest; "
        f"correction: {', '.join(fixes) or 'none'}.",
    ]


def _notes(split: str, final: dict, cfg: Config) -> list[str]:
    """What the headline number means (validation = optimistic) and the calibration gap's sign."""
    from cnnkit.evaluate.caveats import calibration_note, selection_note

    notes = [n for n in (selection_note(split), calibration_note(final, cfg.optim.label_smoothing)) if n]
    if split == "val":
        notes[0] = f"The {split} number above is the {notes[0]}."
    return [line for n in notes for line in ("", n)]


def render_report(
    run_dir: Path, cfg: Config, summary: dict, rows: list[dict], final: dict, skipped: list[SkippedFile]
) -> str:
    """report.md's text."""
    split = "test" if summary.get("test") else "val"
    multi = final.get("task") == "multilabel"
    lines = _headline(summary, final, split, multi)
    lines += _curves(rows, multi)
    lines += _per_class(summary, final, split, multi)
    lines += _notes(split, final, cfg)
    lines += _balance_line(summary)
    lines += _skipped(skipped)
    lines += _reproduce(run_dir, cfg)
    return "\n".join(lines)


def _headline(summary: dict, final: dict, split: str, multi: bool) -> list[str]:
    """The title, the run in one sentence and the table of its key numbers."""
    head = summary[split]
    lines = [
        f"# Run `{summary['run']}`",
        "",
        f"**{summary['model']}** trained on **{summary['dataset']}** for {summary['epochs']} epochs "
        f"({summary['train_seconds']:.1f} s, {summary['images_per_second']:,.0f} images/s on {summary['device']}).",
        "",
        "| | |",
        "|---|---|",
    ]
    if multi:
        lines += [
            f"| {split} mean AP | **{head['mean_ap']:.4f}** ({head['num_samples']} images, several labels each) |",
            f"| {split} exact match (every label right at {final['threshold']}) | {_pct(head['exact_match'])} |",
            f"| {split} macro F1 | {head['macro_f1']:.4f} |",
        ]
    else:
        lines.append(
            f"| {split} accuracy | **{_pct(head['accuracy'])}** ({head['num_samples']} images{', optimistic: used for model selection' if split == 'val' else ''}) |"
        )
    if final.get("task") == "segment":  # accuracy above is pixel accuracy; per-class F1 below is Dice
        lines.append(
            f"| {split} mean IoU | **{final['miou']:.4f}** (Dice {final['dice']:.4f}; accuracy: pixel accuracy) |"
        )
    if "top5_accuracy" in head:
        lines.append(f"| {split} top-5 accuracy | {_pct(head['top5_accuracy'])} |")
    lines += [
        f"| {split} loss | {head['loss']:.4f}{' (binary cross-entropy)' if multi else ''} |",
        f"| best epoch (by val {'exact match' if multi else 'accuracy'}) | {summary['best_epoch']} ({_pct(summary['best_val_accuracy'])}) |",
        f"| parameters | {summary['parameters']:,} |",
        f"| images (train / val / test) | {summary['split_sizes']['train']} / {summary['split_sizes']['val']} / {summary['split_sizes']['test']} |",
        f"| input | {summary['input']['channels']}x{summary['input']['size'][0]}x{summary['input']['size'][1]}, "
        f"mean {', '.join(f'{m:.4f}' for m in summary['input']['mean'])}, std {', '.join(f'{s:.4f}' for s in summary['input']['std'])} |",
    ]
    return lines


def _curves(rows: list[dict], multi: bool) -> list[str]:
    """The learning-curves plot and one table row per epoch."""
    lines = [
        "",
        "## Learning curves",
        "",
        "![learning curves](plots/learning_curves.png)",
        "",
        "| epoch | train loss | train acc | val loss | val acc | lr | seconds |"
        if not multi
        else "| epoch | train loss | train exact match | val loss | val exact match | lr | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return lines + [
        f"| {r['epoch']} | {r['train_loss']:.4f} | {_pct(r['train_accuracy'])} | {r['val_loss']:.4f} | {_pct(r['val_accuracy'])} | {r['lr']:.3g} | {r['seconds']:.1f} |"
        for r in rows
    ]


def _per_class(summary: dict, final: dict, split: str, multi: bool) -> list[str]:
    """The confusion matrix (or per-class AP / F1) plot and the per-class table with its macro row."""
    train_counts = summary.get("class_counts", {}).get("train") or []
    train_n = lambda i: str(train_counts[i]) if i < len(train_counts) else "-"  # noqa: E731
    lines = [
        "",
        f"## Per class ({split} split, best checkpoint)",
        "",
        "![per-class AP and F1](plots/per_class.png)" if multi else "![confusion matrix](plots/confusion_matrix.png)",
        "",
        f"| class | train {'pixels' if final.get('task') == 'segment' else 'images'} |{' AP |' if multi else ''} precision | recall | F1 | support |",
        f"|---|---:|{'---:|' if multi else ''}---:|---:|---:|---:|",
    ]
    ap = lambda v: f" {v:.3f} |" if multi else ""  # noqa: E731  (the AP column of multi-label runs)
    lines += [
        f"| {name} | {train_n(i)} |{ap(m.get('ap'))} {_pct(m['precision'])} | {_pct(m['recall'])} | {m['f1']:.3f} | {m['support']} |"
        for i, (name, m) in enumerate(final["per_class"].items())
    ]
    m = final["macro"]
    total = "-" if multi else sum(train_counts)
    lines.append(
        f"| **macro** | {total} |{ap(final.get('mean_ap'))} {_pct(m['precision'])} | {_pct(m['recall'])} | {m['f1']:.3f} | {final['num_samples']} |"
    )
    if multi:
        lines += [
            "",
            f"Precision, recall and F1 at sigmoid >= {final['threshold']}; AP (average precision) needs no threshold. Support: {split} images carrying the class.",
        ]
    return lines


def _skipped(skipped: list[SkippedFile]) -> list[str]:
    if not skipped:
        return []
    lines = [
        "",
        f"## Skipped files ({len(skipped)})",
        "",
        "Unreadable files were left out (also in `skipped.csv`):",
        "",
    ]
    lines += [f"- `{s.path}`: {s.reason}" for s in skipped[:50]]
    if len(skipped) > 50:
        lines.append(f"- ... and {len(skipped) - 50} more")
    return lines


def _reproduce(run_dir: Path, cfg: Config) -> list[str]:
    return [
        "",
        "## Reproduce",
        "",
        "```",
        f"cnnkit train --config {run_dir.as_posix()}/config.yaml",
        "```",
        "",
        f"Learning rate {cfg.optim.lr} ({cfg.optim.name}, {cfg.schedule.name} schedule), batch size {cfg.train.batch_size}, seed {cfg.train.seed}.",
        "",
    ]
