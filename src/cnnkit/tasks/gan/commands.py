"""CLI verb of cnnkit.tasks.gan: `cnnkit generate RUN --n 64 --out DIR [--seed S] [--score CLASSIFIER]`,
images from a DCGAN run's generator (one PNG each, and grid.png), optionally judged by a classifier."""

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

    from cnnkit.tasks.gan.generate import generate, load_generator, write_images

    g = load_generator(args.run)
    paths = write_images(generate(g, args.n, args.seed), Path(args.out))
    print(f"{args.n} images ({g.channels}x{g.side}x{g.side}) and {paths[-1].name} in {args.out}")
    if args.score:
        import json

        from cnnkit.rundir import atomic_write_text
        from cnnkit.tasks.gan.score import score_run

        q = score_run(args.run, args.score, n=args.n, seed=args.seed)
        atomic_write_text(Path(args.out) / "quality.json", json.dumps(q, indent=2) + "\n")
        shares = " ".join(f"{k}:{100 * v:.0f}%" for k, v in q["class_shares"].items())
        print(
            f"classifier-FID {q['fid']:.3f} (real-vs-real floor {q['fid_real_floor']:.3f}, untrained generator "
            f"{q['fid_untrained_ceiling']:.3f}); classes of the generated images: {shares}"
        )
    return 0
