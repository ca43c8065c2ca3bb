"""`cnnkit predict` on a segmentation checkpoint (mask PNGs and overlays, tasks/segment/predict.py),
added to the inference area's verb from here (imports run one way)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Segmentation has no verb of its own: train, evaluate, predict and report take its runs."""


def extend(parsers: dict[str, argparse.ArgumentParser]) -> None:
    """predict on a segmentation run or checkpoint: masks and overlays, instead of classes."""
    from cnnkit.ranges import Range, flag_type

    predict = parsers["predict"]
    predict.set_defaults(task_predictors=[*(predict.get_default("task_predictors") or []), (_owns, _predict)])
    g = predict.add_argument_group("segmentation checkpoints (tiles for large images, flip TTA)")
    g.add_argument("--tile", type=flag_type(Range(16)), help="segment in overlapping SIZE px tiles")
    g.add_argument("--overlap", type=flag_type(Range(0)), help="tile overlap in px (default tile/4)")
    g.add_argument(
        "--tta",
        choices=("none", "flip", "d4"),  # tiling.TTA_MODES (not imported: the parser loads no torch)
        default="none",
        help="test-time augmentation: flip (the mirror image) or d4 (the 8 rotations and mirrors)",
    )


def _owns(checkpoint: str) -> bool:
    from cnnkit.tasks.segment.predict import is_segment_checkpoint

    return is_segment_checkpoint(checkpoint)


def _predict(args: argparse.Namespace) -> int:
    from cnnkit.tasks.segment.predict import predict_command

    return predict_command(args)
