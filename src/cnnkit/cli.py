"""The `cnnkit` command: it only dispatches. Each area registers its verbs and their flags in its
own commands.py (COMMAND_MODULES); each verb is a thin call of a library function."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Sequence

from cnnkit.errors import CnnkitError

# Each area adds its verbs and their flags from its own module: `register(subparsers)` adds parsers
# whose `func(args) -> int` does the work; `cnnkit --help` lists them in this order. Keep those
# modules light to import (import torch and friends inside the command functions), so that
# `cnnkit --help` stays fast.
# An area that builds on a lower one adds to that area's verbs from above: `extend(parsers)` (optional;
# {verb: parser}, called once every verb is registered) adds flags and sets defaults the lower verb
# calls (e.g. robust adds --adv-* and the run's hooks to `train`), so imports run one way only.
COMMAND_MODULES: list[str] = [
    "cnnkit.training.commands",  # train, lr-find, recipes
    "cnnkit.evaluate.commands",  # evaluate, compare
    "cnnkit.inference.commands",  # predict
    "cnnkit.models.commands",  # models, summary
    "cnnkit.data.commands",  # datasets, data-info, augment-preview
    "cnnkit.explain.commands",  # conv-demo, explain, featuremaps, filters
    "cnnkit.report.commands",  # report
    "cnnkit.data.samples",  # samples
    "cnnkit.deploy.commands",  # export, quantize, bench-infer, prune
    "cnnkit.robust.commands",  # attack, robust-eval
    "cnnkit.serve.commands",  # serve
    "cnnkit.search.commands",  # tune
    "cnnkit.tasks.segment.commands",  # (predict on segmentation checkpoints)
    "cnnkit.tasks.detect.commands",  # anchors (and predict on detection checkpoints)
    "cnnkit.tasks.gan.commands",  # generate
    "cnnkit.tasks.style.commands",  # stylize
]


def build_parser() -> argparse.ArgumentParser:
    from cnnkit import __version__
    from cnnkit._argparse import SuggestingParser  # unknown flags and verbs get "did you mean"

    parser = SuggestingParser(
        prog="cnnkit", description="Convolutional neural networks on images: train, evaluate, predict."
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [importlib.import_module(m) for m in COMMAND_MODULES]
    for module in modules:
        module.register(sub)
    for module in modules:
        if hasattr(module, "extend"):
            module.extend(sub.choices)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (so in-process callers can capture it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    log = logging.getLogger("cnnkit")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())


def main(argv: Sequence[str] | None = None) -> int:
    from cnnkit._argparse import parse_args

    parser = build_parser()
    args = parse_args(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _log_to_stderr()
    from cnnkit.io_safety import Interrupted, interruptible

    # train handles its own signals (finish the step, checkpoint); every other verb stops at once,
    # its writers removing their temporary files, and says what was written
    guard = interruptible() if args.command != "train" else contextlib.nullcontext()
    try:
        with guard:
            return args.func(args)
    except CnnkitError as e:
        print(f"cnnkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"cnnkit {args.command}: {e.summary()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"cnnkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnkit predict ... | head`: the reader left; end quietly
        from cnnkit._pipes import quiet_stdout

        return quiet_stdout()
    except OSError as e:  # a disk or permission problem no writer turned into a clearer error
        reason = e.strerror or str(e)
        print(
            f"cnnkit {args.command}: error: {e.filename or 'a file'}: {reason}; check the disk and the folder's permissions",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
