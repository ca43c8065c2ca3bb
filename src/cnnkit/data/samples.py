"""The sample digits that ship with cnnkit (data/assets/samples), and `cnnkit samples`,
which prints their folder so that examples run as written: cnnkit predict RUN $(cnnkit samples)/7.png"""

from __future__ import annotations

import argparse
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent / "assets" / "samples"


def samples_dir() -> Path:
    """The installed folder of sample digits (0.png ... 9.png, 7-on-white.png)."""
    return SAMPLES_DIR


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "samples",
        help="print the folder of sample digits that ship with cnnkit (for predict / explain examples)",
        description="Print the folder of the sample digits that ship with cnnkit: 0.png ... 9.png (MNIST test digits, white on black) "
        "and 7-on-white.png (dark ink on a light background). Example: cnnkit predict RUN $(cnnkit samples)/7.png",
    )
    p.add_argument("--list", action="store_true", help="print each file's path instead")
    p.set_defaults(func=cmd_samples)


def cmd_samples(args: argparse.Namespace) -> int:
    folder = samples_dir()
    print("\n".join(str(f) for f in sorted(folder.glob("*.png"))) if args.list else folder)
    return 0
