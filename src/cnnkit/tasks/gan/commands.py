"""CLI verb of cnnkit.tasks.gan: `cnnkit generate RUN --n 64 --out DIR [--seed S] [--class K] [--score CLASSIFIER]
[--interpolate --frames F]`, images from a DCGAN run's generator (one PNG each, and grid.png), optionally judged
by a classifier, or slerp walks between latent points (interpolation.png)."""

from __future__ import annotations

import argparse

from cnnkit.ranges import Range, flag_type


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser("generate", help="images from a GAN run (cnnkit train --task gan): one PNG each and a grid")
    p.add_argument("run", metavar="RUN", help="a GAN run folder (its last.ckpt) or a GAN checkpoint file")
    p.add_argument(
        "--n", type=flag_type(Range(1, 100_000)), help="how many images (default 64), or walks with --interpolate (4)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and grid.png")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0: the same images each time)")
    p.add_argument(
        "--class",
        dest="cls",
        metavar="K",
        help="a conditional run (--conditional): images of this class only (index or name); "
        "default: the classes in turn",
    )
    p.add_argument(
        "--interpolate",
        action="store_true",
        help="walk between two latent points per row (spherical interpolation, slerp): DIR/interpolation.png",
    )
    p.add_argument("--frames", type=flag_type(Range(2, 100)), default=10, help="steps of each walk (default 10)")
    p.add_argument(
        "--score",
        metavar="CLASSIFIER",
        help="also judge the images with a cnnkit classifier of the same data (checkpoint or run folder): "
        "classifier-FID against the real test split with its real-vs-real floor and untrained ceiling, "
        "class shares; written to DIR/quality.json",
    )
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnkit.tasks.gan.generate import class_index, generate, load_generator, write_images

    g = load_generator(args.run)
    cls = class_index(g, args.cls)
    if args.interpolate:
        from cnnkit.tasks.gan.generate import interpolate, write_interpolation

        walks = args.n or 4
        images, _ = interpolate(g, walks, args.frames, args.seed, cls)
        path = write_interpolation(images, args.frames, Path(args.out))
        print(f"{walks} walks of {args.frames} steps (slerp between two latent points each) in {path}")
        return 0
    n = args.n or 64
    by_class = g.num_classes if g.num_classes and cls is None and n > g.num_classes else None  # a class a column
    paths = write_images(generate(g, n, args.seed, cls), Path(args.out), by_class)
    print(f"{n} images ({g.channels}x{g.side}x{g.side}) and {paths[-1].name} in {args.out}")
    if args.score:
        import json

        from cnnkit.rundir import atomic_write_text
        from cnnkit.tasks.gan.score import describe, score_run

        q = score_run(args.run, args.score, n=n, seed=args.seed, cls=cls)
        atomic_write_text(Path(args.out) / "quality.json", json.dumps(q, indent=2) + "\n")
        print(describe(q))
    return 0
