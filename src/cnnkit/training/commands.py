"""CLI verbs of cnnkit.training: `register(subparsers)` adds them (imports stay light here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    from cnnkit.cli import _add_train

    p = _add_train(
        sub, name="lr-find", help="learning-rate range test: a plot and a suggested rate",
        description="Train briefly with the learning rate rising from --start-lr to --end-lr; plot the loss and suggest a rate. Takes the train flags.",
    )
    g = p.add_argument_group("range test")
    g.add_argument("--steps", type=int, default=100, help="optimiser steps (default 100)")
    g.add_argument("--start-lr", type=float, default=1e-6)
    g.add_argument("--end-lr", type=float, default=10.0)
    g.add_argument("--out", default="lr_find.png", metavar="FILE.png", help="where the plot goes (a .json with the curve is written beside it)")
    p.set_defaults(func=cmd_lr_find)
    p = sub.add_parser("recipes", help="list the tuned per-dataset recipes (train.recipe / --recipe)")
    p.add_argument("--show", metavar="NAME", help="print one recipe's settings")
    p.set_defaults(func=cmd_recipes)


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
    print("\ntrain.recipe auto (the default) applies the dataset's recipe under the keys you set; none turns it off. --show NAME lists the settings.")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from cnnkit.cli import build_config
    from cnnkit.training.lr_find import lr_find

    cfg = build_config(args)
    result = lr_find(cfg, out=args.out, steps=args.steps, start_lr=args.start_lr, end_lr=args.end_lr)
    Path(args.out).with_suffix(".json").write_text(json.dumps(result.to_dict(), indent=2))
    print(f"suggested learning rate: {result.suggestion:.3g} (steepest fall of the loss; {len(result.lrs)} steps{', stopped when the loss diverged' if result.diverged else ''})")
    print(f"plot: {args.out}   use it with: cnnkit train --lr {result.suggestion:.3g}")
    return 0
