"""CLI verbs of cnnkit.evaluate: evaluate, compare (`register(subparsers)` adds them; imports stay light here)."""

from __future__ import annotations

import argparse
import json

from cnnkit.ranges import Range, flag_type


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser("evaluate", help="metrics of a run or checkpoint on a dataset split")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT")
    p.add_argument("--data", metavar="PATH", help="evaluate on this image folder instead of the run's dataset")
    p.add_argument("--dataset", help="evaluate on this built-in dataset instead")
    p.add_argument("--data-root")
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="default: test, or val when the data has no test split (that number is optimistic: val chose the epoch)",
    )
    p.add_argument("--batch-size", type=flag_type(Range(1)), default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", metavar="FILE.json", help="write the metrics as JSON")
    p.add_argument(
        "--tta",
        choices=("none", "flip", "flip+shift", "d4"),
        default="none",
        help="test-time augmentation: average the softmax over flipped / shifted views (d4: the 8 rotations and "
        "mirrors, for images with no up or left, e.g. microscopy)",
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="where the confusion matrix, reliability diagram and hardest examples go (default: evaluation/<dataset>-<split>/ beside the checkpoint)",
    )
    p.add_argument("--no-plots", action="store_true", help="print the metrics only")
    p.set_defaults(func=cmd_evaluate)  # areas above add flags and after_evaluate steps (cnnkit.robust: --robust)

    p = sub.add_parser("compare", help="key numbers and per-class differences of several runs")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.set_defaults(func=cmd_compare)


def _plots_folder(args: argparse.Namespace):
    """--plots, or a function of the split chosen: evaluation/<data>-<split>[-tta-MODE] beside the checkpoint."""
    if args.no_plots:
        return None
    if args.plots:
        return args.plots
    from cnnkit.checkpoint import resolve_checkpoint

    where = "folder" if args.data else (args.dataset or "own")
    folder = resolve_checkpoint(args.checkpoint).parent / "evaluation"
    tta = "" if args.tta == "none" else "-tta-" + args.tta.replace("+", "-")
    return lambda split: folder / f"{where}-{split}{tta}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnkit.evaluate.api import evaluate_checkpoint
    from cnnkit.evaluate.format import format_metrics

    m = evaluate_checkpoint(
        args.checkpoint,
        dataset=args.dataset,
        data=args.data,
        data_root=args.data_root,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        tta=args.tta,
        plots=_plots_folder(args),
    )
    print(format_metrics(m))
    if m.get("files"):
        print("\nwrote " + "\n      ".join(m["files"]))
    if args.out:
        from cnnkit.io_safety import write_file

        write_file(args.out, json.dumps(m, indent=2), hint="or choose another --out")
        print(f"\nwrote {args.out}")
    for after in getattr(args, "after_evaluate", None) or ():
        after(args)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from cnnkit.evaluate.compare import compare_runs, format_comparison

    print(format_comparison(compare_runs(args.runs)))
    return 0
