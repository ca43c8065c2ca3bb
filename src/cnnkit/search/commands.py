"""The `tune` verb: `cnnkit tune SPACE.yaml [--config BASE] [--trials N] [--timeout 15m] ...`."""

from __future__ import annotations

import argparse
import shlex
import sys

from cnnkit.ranges import Range, flag_type


def register(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="hyperparameter / architecture search with Optuna (every trial a run folder)",
        description="Search config keys and networks of the spec grammar, as a YAML space says "
        "(see cnnkit.search.space). The study is kept in SQLite (out/study.db) or --storage, so it resumes "
        "after Ctrl-C (--resume) and several processes can share it. Writes summary.md, best_config.yaml, "
        "history.png and pareto.png to the output folder.",
    )
    p.add_argument("space", metavar="SPACE.yaml", help="the search space (params:, architecture:, budgets)")
    p.add_argument("--config", metavar="FILE", help="base config the trials start from (default: the defaults)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a base config key, e.g. train.epochs=2"
    )
    p.add_argument("--trials", type=flag_type(Range(1)), help="stop when this many trials have finished")
    p.add_argument("--timeout", metavar="DURATION", help="stop starting trials after this long, e.g. 15m")
    p.add_argument("--max-macs", type=float, metavar="N", help="do not train models above N MACs per image")
    p.add_argument(
        "--max-latency-ms",
        type=float,
        metavar="MS",
        help="do not train models slower than MS ms per batch-1 CPU forward (measured before training)",
    )
    p.add_argument("--storage", metavar="URL", help="a shared database, e.g. sqlite:////shared/study.db")
    p.add_argument("--study-name", default="tune", help="the study's name in the storage (default tune)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: <runs_dir>/tune-<space name>)")
    p.add_argument("--resume", action="store_true", help="continue the study found in the output folder")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnkit.config import Config, load_config, parse_value
    from cnnkit.errors import ConfigError
    from cnnkit.search.space import load_space, parse_duration
    from cnnkit.search.study import run_study
    from cnnkit.training.interrupt import TrainingInterrupted

    space = load_space(args.space)
    base = load_config(args.config) if args.config else Config()
    overrides = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=2")
        overrides[key.strip()] = parse_value(value)
    base = base.with_overrides(overrides, source="--set")
    out = Path(args.out) if args.out else Path(base.run.runs_dir) / f"tune-{Path(args.space).stem}"
    if args.max_macs is not None and args.max_macs <= 0:
        raise ConfigError(f"--max-macs must be > 0, got {args.max_macs}")
    if args.max_latency_ms is not None and args.max_latency_ms <= 0:
        raise ConfigError(f"--max-latency-ms must be > 0, got {args.max_latency_ms}")
    argv = [a for a in sys.argv[1:] if a != "--resume"] if sys.argv[1:2] == ["tune"] else []
    hint = "cnnkit " + shlex.join(argv) if argv else f"cnnkit tune {args.space} --out {out}"
    try:
        run_study(
            space,
            base,
            out,
            storage=args.storage,
            study_name=args.study_name,
            trials=args.trials,
            timeout=parse_duration(args.timeout, "--timeout") if args.timeout else None,
            max_macs=args.max_macs,
            max_latency_ms=args.max_latency_ms,
            resume=args.resume,
            resume_hint=hint,
        )
    except TrainingInterrupted as e:
        print(f"cnnkit tune: {e}", file=sys.stderr)
        return e.exit_code
    return 0
