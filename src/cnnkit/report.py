"""report.md: a short human summary of a run, with its numbers and plots."""

from __future__ import annotations

from pathlib import Path

from cnnkit.config import Config
from cnnkit.data.types import SkippedFile


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def write_report(run_dir: Path, cfg: Config, summary: dict, rows: list[dict], final: dict, skipped: list[SkippedFile]) -> Path:
    split = "test" if summary.get("test") else "val"
    head = summary[split]
    lines = [
        f"# Run `{summary['run']}`",
        "",
        f"**{summary['model']}** trained on **{summary['dataset']}** for {summary['epochs']} epochs "
        f"({summary['train_seconds']:.1f} s, {summary['images_per_second']:,.0f} images/s on {summary['device']}).",
        "",
        "| | |",
        "|---|---|",
        f"| {split} accuracy | **{_pct(head['accuracy'])}** ({head['num_samples']} images) |",
    ]
    if "top5_accuracy" in head:
        lines.append(f"| {split} top-5 accuracy | {_pct(head['top5_accuracy'])} |")
    lines += [
        f"| {split} loss | {head['loss']:.4f} |",
        f"| best epoch (by val accuracy) | {summary['best_epoch']} ({_pct(summary['best_val_accuracy'])}) |",
        f"| parameters | {summary['parameters']:,} |",
        f"| images (train / val / test) | {summary['split_sizes']['train']} / {summary['split_sizes']['val']} / {summary['split_sizes']['test']} |",
        f"| input | {summary['input']['channels']}x{summary['input']['size'][0]}x{summary['input']['size'][1]}, "
        f"mean {', '.join(f'{m:.4f}' for m in summary['input']['mean'])}, std {', '.join(f'{s:.4f}' for s in summary['input']['std'])} |",
        "",
        "## Learning curves",
        "",
        "![learning curves](plots/learning_curves.png)",
        "",
        "| epoch | train loss | train acc | val loss | val acc | lr | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['epoch']} | {r['train_loss']:.4f} | {_pct(r['train_accuracy'])} | {r['val_loss']:.4f} | {_pct(r['val_accuracy'])} | {r['lr']:.3g} | {r['seconds']:.1f} |"
        for r in rows
    ]
    lines += [
        "",
        f"## Per class ({split} split, best checkpoint)",
        "",
        "![confusion matrix](plots/confusion_matrix.png)",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {name} | {_pct(m['precision'])} | {_pct(m['recall'])} | {m['f1']:.3f} | {m['support']} |" for name, m in final["per_class"].items()
    ]
    m = final["macro"]
    lines.append(f"| **macro** | {_pct(m['precision'])} | {_pct(m['recall'])} | {m['f1']:.3f} | {final['num_samples']} |")
    if skipped:
        lines += ["", f"## Skipped files ({len(skipped)})", "", "Unreadable files were left out (also in `skipped.csv`):", ""]
        lines += [f"- `{s.path}`: {s.reason}" for s in skipped[:50]]
        if len(skipped) > 50:
            lines.append(f"- ... and {len(skipped) - 50} more")
    lines += [
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
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
