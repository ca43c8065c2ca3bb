"""CLI verbs of detection: `cnnkit anchors`, and `cnnkit predict` on a detection checkpoint (boxes
drawn, tasks/detect/predict.py), added to the inference area's verb from here (imports run one way)."""

from __future__ import annotations

import argparse


def extend(parsers: dict[str, argparse.ArgumentParser]) -> None:
    """predict on a detection run or checkpoint: boxes drawn and listed, instead of classes."""
    predict = parsers["predict"]
    predict.set_defaults(task_predictors=[*(predict.get_default("task_predictors") or []), (_owns, _predict)])


def _owns(checkpoint: str) -> bool:
    from cnnkit.tasks.detect.predict import is_detect_checkpoint

    return is_detect_checkpoint(checkpoint)


def _predict(args: argparse.Namespace) -> int:
    from cnnkit.tasks.detect.predict import predict_command

    return predict_command(args)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
