"""CLI verb of cnnkit.inference: `cnnkit predict` (`register(subparsers)` adds it; imports stay light here)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

from cnnkit.ranges import Range, flag_type

BACKENDS = ("eager", "channels-last", "bf16", "compile", "onnxruntime", "onnxruntime-int8")


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser(
        "predict",
        help="top-k classes for image files and folders",
        description="Top-k classes of each image; for a multi-label model, every label whose sigmoid probability reaches --threshold.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint, or a run folder (its best.ckpt)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument(
        "--top-k",
        type=flag_type(Range(1)),
        default=3,
        help="classes shown per image (default 3; at most the model's classes)",
    )
    p.add_argument(
        "--threshold",
        type=flag_type(Range(0, 1), float),
        default=0.5,
        help="multi-label models: report every label with probability >= this (default 0.5)",
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--out", metavar="FILE", help="also write the predictions (in --format) to this file, atomically")
    p.add_argument(
        "--invert",
        choices=("no", "auto", "yes"),
        default="no",
        help="grayscale models trained on dark backgrounds (MNIST): auto inverts images "
        "with a light background (dark ink on paper), yes inverts every image (default no: such images get a warning)",
    )
    p.add_argument(
        "--save-images", metavar="DIR", help="also write each image with its top classes drawn on it into DIR (PNG)"
    )
    p.add_argument("--device", default="cpu")
    # segmentation checkpoints (tasks/segment/predict.py): tiles for large images, flip TTA
    p.add_argument("--tile", type=flag_type(Range(16)), help="segmentation: segment in overlapping SIZE px tiles")
    p.add_argument("--overlap", type=flag_type(Range(0)), help="segmentation: tile overlap in px (default tile/4)")
    p.add_argument("--tta", choices=("none", "flip"), default="none", help="segmentation: flip test-time augmentation")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="eager",
        help="how the model runs (cnnkit.deploy.backends; default eager; a .onnx file runs in onnxruntime)",
    )
    p.set_defaults(func=cmd_predict)
    register_anchors(sub)  # a detection run's anchors (below)


def format_predictions(report, fmt: str) -> str:
    """Single-label: the top-k classes of each image. Multi-label (predictions with `labels`):
    every label at or above the threshold (CSV: one row per label; an image with none, one empty row)."""
    multi = any(getattr(p, "labels", None) is not None for p in report.predictions)
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2)
    if fmt == "csv":
        return _csv(report, multi)
    # a newline or escape sequence in a file name must not break the table
    from cnnkit._text import printable

    width = max([len(printable(p.source or "")) for p in report.predictions] + [5])
    lines = [f"{'image':<{width}}  {'labels (multi-label)' if multi else 'prediction'}"]
    for p in report.predictions:
        chosen = p.labels if multi else p.top_k
        lines.append(
            f"{printable(p.source or ''):<{width}}  "
            + ("  ".join(f"{label} {prob:.1%}" for label, prob in chosen) or "(no label above the threshold)")
        )
    return "\n".join(lines)


def _csv(report, multi: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["source", "rank", "label", "probability"])
    for p in report.predictions:
        chosen = p.labels if multi else p.top_k
        for rank, (label, prob) in enumerate(chosen, 1):
            w.writerow([p.source, rank, label, f"{prob:.6f}"])
        if multi and not chosen:
            w.writerow([p.source, "", "", ""])
    return buf.getvalue().rstrip("\n")


def _classifier(args: argparse.Namespace):
    """The checkpoint as a Classifier running on --backend (eager: cnnkit.load; the others: cnnkit.deploy)."""
    from cnnkit.inference import load

    if args.backend == "eager":
        return load(args.checkpoint, device=args.device)
    from cnnkit.deploy.predict_backend import load_backend

    return load_backend(args.checkpoint, args.backend, device=args.device)


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnkit._text import printable
    from cnnkit.tasks.detect.predict import is_detect_checkpoint
    from cnnkit.tasks.segment.predict import is_segment_checkpoint, predict_command

    if args.backend == "eager" and is_detect_checkpoint(args.checkpoint):  # boxes drawn (tasks/detect/predict.py)
        from cnnkit.tasks.detect.predict import predict_command as predict_boxes

        return predict_boxes(args)
    if args.backend == "eager" and is_segment_checkpoint(
        args.checkpoint
    ):  # masks and overlays (tasks/segment/predict.py)
        return predict_command(args)
    clf = _classifier(args)
    clf.invert = args.invert
    report = clf.predict_files(args.paths, top_k=args.top_k, threshold=args.threshold)
    if report.predictions or args.format == "json":
        text = format_predictions(report, args.format)
        print(text)
        if args.out:
            from cnnkit.io_safety import write_file

            write_file(args.out, text + "\n", hint="or choose another --out")
            print(f"wrote {args.out}", file=sys.stderr)
    for source, error in report.errors:
        print(f"cnnkit predict: could not read {printable(source)}: {printable(error)}", file=sys.stderr)
    _side_notes(args, report)
    if not report.predictions and not report.errors:
        print("cnnkit predict: no image files found in the given paths", file=sys.stderr)
        return 1
    return 1 if report.errors else 0


def _side_notes(args: argparse.Namespace, report) -> None:
    """--save-images, and one warning for light-background images a dark-background model got as they are."""
    if args.save_images and report.predictions:
        from cnnkit.annotate import save_annotated

        print(
            f"cnnkit predict: wrote {len(save_annotated(report.predictions, args.save_images))} annotated images into {args.save_images}",
            file=sys.stderr,
        )
    if report.light_background:  # one line, however many
        from cnnkit.background import background_warning

        print(f"cnnkit predict: warning: {background_warning(report.light_background)}", file=sys.stderr)


def register_anchors(sub) -> None:
    """`cnnkit anchors RUN IMAGE`: the RPN's anchors, proposals and detections as PNGs (tasks/detect/anchors.py)."""
    p = sub.add_parser("anchors", help="a detection run's anchors, RPN proposals and detections over one image (PNGs)")
    p.add_argument("checkpoint", help="a detection run folder or checkpoint")
    p.add_argument("image", help="one image file")
    p.add_argument("--out", default="anchors", help="folder for the PNGs (default: ./anchors)")
    p.add_argument("--top", type=int, default=10, help="how many RPN proposals to draw (default 10)")
    p.set_defaults(func=cmd_anchors)


def cmd_anchors(args: argparse.Namespace) -> int:
    from cnnkit.errors import CheckpointError
    from cnnkit.tasks.detect.anchors import anchor_pictures
    from cnnkit.tasks.detect.predict import is_detect_checkpoint

    if not is_detect_checkpoint(args.checkpoint):
        raise CheckpointError(f"{args.checkpoint}: not a detection run or checkpoint (train one with --task detect)")
    for path in anchor_pictures(args.checkpoint, args.image, args.out, top=args.top):
        print(path)
    return 0
