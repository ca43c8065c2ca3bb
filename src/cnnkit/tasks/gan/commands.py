"""CLI verb of cnnkit.tasks.gan: `cnnkit generate RUN --n 64 --out DIR [--seed S]`, images from a DCGAN
run's generator (one PNG each, and grid.png)."""

from __future__ import annotations

import argparse

from cnnkit.ranges import Range, flag_type


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser("generate", help="images from a GAN run (cnnkit train --task gan): one PNG each and a grid")
    p.add_argument("run", metavar="RUN", help="a GAN run folder (its last.ckpt) or a GAN checkpoint file")
    p.add_argument("--n", type=flag_type(Range(1, 100_000)), default=64, help="how many images (default 64)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and grid.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0: the same images each time)")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnkit.tasks.gan.generate import generate, load_generator, write_images

    g = load_generator(args.run)
    paths = write_images(generate(g, args.n, args.seed), Path(args.out))
    print(f"{args.n} images ({g.channels}x{g.side}x{g.side}) and {paths[-1].name} in {args.out}")
    return 0
