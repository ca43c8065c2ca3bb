"""CLI verbs of cnnkit.models: `register(subparsers)` adds them (imports stay light here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cnnkit.ranges import Range, flag_type


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    sub.add_parser("models", help="list the registered models").set_defaults(func=cmd_models)
    p = sub.add_parser(
        "summary",
        help="per-layer shapes, parameters, MACs and receptive fields of a model",
        description="Summarise a registered model, a layer spec or a checkpoint: per layer the output shape, parameters, MACs (torch.utils.flop_counter) and receptive field; totals and the activation memory of a batch.",
    )
    p.add_argument(
        "model",
        metavar="MODEL_OR_SPEC_OR_CKPT",
        help="a model name (see `cnnkit models`), a layer spec such as 'conv(32,3)-bn-relu-gap-fc(10)', or a checkpoint / run folder",
    )
    p.add_argument(
        "--input", metavar="CxHxW", help="input shape, e.g. 3x32x32 (default: the model's or checkpoint's own)"
    )
    p.add_argument(
        "--num-classes",
        type=flag_type(Range(1, 1_000_000)),
        help="classifier outputs (default: 1000 for ImageNet-size models, else 10)",
    )
    p.add_argument("--small-input", action="store_true", help="the model's small-input stem (models that have one)")
    p.add_argument(
        "--batch-size",
        type=flag_type(Range(1)),
        default=64,
        help="batch size for the activation-memory estimate (default 64)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    p.set_defaults(func=cmd_summary)


def parse_input(text: str) -> tuple[int, int, int]:
    from cnnkit.errors import ConfigError

    parts = text.lower().replace("×", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) == 2:
        dims = (3, *dims)
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(f"--input {text!r}: expected CxHxW such as 3x32x32 (or HxW for 3 channels)")
    return dims


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnkit.models.summary import summarize

    shape = parse_input(args.input) if args.input else None
    model, title, shape = _model_to_summarize(args, shape)
    s = summarize(model, shape, batch_size=args.batch_size, title=title)
    print(s.format())
    if args.json:
        from cnnkit.io_safety import write_file

        write_file(args.json, json.dumps(s.to_dict(), indent=2), hint="or choose another --json")
    return 0


def _model_to_summarize(args: argparse.Namespace, shape: tuple[int, int, int] | None):
    """(meta-device model, title, input shape) of a checkpoint / run folder, a registered name or a spec.
    A checkpoint is read by the `checkpoint_model` cnnkit.inference.commands.extend sets (it is above models)."""
    from cnnkit.models.zoo import build_for_summary

    path = Path(args.model)
    if path.exists() and (path.is_dir() or path.suffix in (".ckpt", ".pt", ".pth")):
        read = getattr(args, "checkpoint_model", None)
        if read is None:
            from cnnkit.errors import CnnkitError

            raise CnnkitError(
                f"{path}: summarising a checkpoint needs cnnkit.inference (run it through the cnnkit command)"
            )
        return read(path, shape)
    return build_for_summary(args.model, shape, num_classes=args.num_classes, small_input=args.small_input)


def cmd_models(args: argparse.Namespace) -> int:
    from cnnkit.models.zoo import zoo_table

    print(zoo_table())
    return 0
