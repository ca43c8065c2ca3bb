"""CLI verbs of cnnkit.training: train, lr-find, recipes (`register(subparsers)` adds them; imports
stay light here). The train flags and the config they build are in training/flags.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cnnkit.training.flags import DESCRIPTION, add_train_flags, build_config


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    from cnnkit.ranges import Range, flag_type

    p = sub.add_parser("train", help="train a model and write a run folder", description=DESCRIPTION)
    add_train_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "lr-find",
        help="learning-rate range test: a plot and a suggested rate",
        description="Train briefly with the learning rate rising from --start-lr to --end-lr; plot the loss and suggest a rate. Takes the train flags.",
    )
    add_train_flags(p, full=False)
    g = p.add_argument_group("range test")
    g.add_argument("--steps", type=flag_type(Range(2)), default=100, help="optimiser steps (default 100)")
    g.add_argument("--start-lr", type=flag_type(Range(0, 10, lo_open=True), float), default=1e-6)
    g.add_argument("--end-lr", type=flag_type(Range(0, 1e3, lo_open=True), float), default=10.0)
    g.add_argument(
        "--out",
        metavar="DIR_OR_FILE.png",
        help="where the plot goes (a .json with the curve beside it): a folder, or a .png file; "
        "default: a new folder runs/lr-find-<dataset>-<model>-<time>/ (--runs-dir, --name)",
    )
    p.set_defaults(func=cmd_lr_find)
    p = sub.add_parser("recipes", help="list the tuned per-dataset recipes (train.recipe / --recipe)")
    p.add_argument("--show", metavar="NAME", help="print one recipe's settings")
    p.set_defaults(func=cmd_recipes)


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from cnnkit.tasks.detect.train import is_detection_run  # --task detect: its own loop (training/detect.py)
    from cnnkit.training.interrupt import TrainingInterrupted

    detect = getattr(args, "task", None) == "detect" or is_detection_run(args.resume)
    cfg = None if detect and args.resume else build_config(args)
    factory = getattr(args, "hook_factory", None)  # set by an area above the engine (cnnkit.robust.commands.extend)
    hooks = factory(args, cfg) if factory is not None and not detect else None  # e.g. adversarial training (adv.*)
    try:
        if detect:
            from cnnkit.training.detect import train as train_detect

            train_detect(cfg, resume=args.resume, quiet=args.quiet)
        elif cfg.runtime.devices > 1 and "RANK" not in os.environ:  # under torchrun, each process is already a rank
            from cnnkit.training.launcher import launch

            print(f"Run folder: {launch(cfg, cfg.runtime.devices, quiet=args.quiet, resume=args.resume, hooks=hooks)}")
        else:
            from cnnkit.training.trainer import train  # (not in the launcher: its workers import it)

            train(cfg, interactive=False if args.plain else None, quiet=args.quiet, resume=args.resume, hooks=hooks)
    except TrainingInterrupted as e:  # the checkpoint is saved: how to resume, and 130 (SIGINT) / 143 (SIGTERM)
        print(f"cnnkit train: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _default_for(r) -> str:
    return ", ".join(r.datasets) or (f"--finetune {r.finetune}" if r.finetune else "-")


def cmd_recipes(args: argparse.Namespace) -> int:
    from cnnkit.training.recipes import RECIPES, recipe_for

    if args.show:
        r = recipe_for(args.show, "")
        print(f"{r.name}: {r.description}\ndefault for: {_default_for(r)}")
        for key, value in r.overrides.items():
            print(f"  {key} = {value}")
        return 0
    for r in RECIPES.values():
        print(f"{r.name:13s} {_default_for(r):24s} {r.description}")
    print(
        "\ntrain.recipe auto (the default) applies the dataset's recipe under the keys you set; none turns it off. --show NAME lists the settings."
    )
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from cnnkit.output_dir import output_file
    from cnnkit.training.lr_find import lr_find

    cfg = build_config(args)
    dataset = cfg.data.dataset if cfg.data.dataset != "folder" else Path(cfg.data.path or "folder").name
    out = output_file(
        args.out,
        "lr_find.png",
        runs_dir=cfg.run.runs_dir,
        name=cfg.run.name,
        what="lr-find",
        dataset=dataset,
        model=cfg.model.name,
    )
    result = lr_find(cfg, out=out, steps=args.steps, start_lr=args.start_lr, end_lr=args.end_lr)
    from cnnkit.io_safety import write_file

    write_file(out.with_suffix(".json"), json.dumps(result.to_dict(), indent=2), hint="or choose another --out")
    print(
        f"suggested learning rate: {result.suggestion:.3g} (steepest fall of the loss; {len(result.lrs)} steps{', stopped when the loss diverged' if result.diverged else ''})"
    )
    print(f"plot: {out}   use it with: cnnkit train --lr {result.suggestion:.3g}")
    return 0
