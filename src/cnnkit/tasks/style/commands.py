"""CLI verb of cnnkit.tasks.style: `cnnkit stylize CONTENT STYLE --out OUT.png` (Gatys et al. 2016)."""

from __future__ import annotations

import argparse

from cnnkit.ranges import Range, flag_type


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser(
        "stylize",
        help="neural style transfer: repaint CONTENT in the style of STYLE (Gatys et al. 2016)",
        description="Optimise an image so that a pretrained CNN sees CONTENT's layout at a deep layer and STYLE's "
        "textures (Gram matrices) at several layers. Writes OUT, OUT_progress.png (intermediate results) and "
        "OUT.json (settings, losses at the start and end, seconds).",
    )
    p.add_argument("content", metavar="CONTENT", help="the photo to repaint (any image file; its size is kept)")
    p.add_argument("style", metavar="STYLE", help="the artwork whose style is taken")
    p.add_argument("--out", required=True, metavar="OUT.png", help="the result (PNG)")
    number = flag_type(Range(0, None), float)
    p.add_argument("--size", type=flag_type(Range(16, 4096)), default=256, help="longer side while optimising (256)")
    p.add_argument("--steps", type=flag_type(Range(1, 100_000)), default=300, help="optimisation steps (300)")
    p.add_argument("--style-weight", type=number, default=1e4, help="weight of the style loss (1e4)")
    p.add_argument("--content-weight", type=number, default=1.0, help="weight of the content loss (1)")
    p.add_argument("--tv-weight", type=number, default=1.0, help="weight of the total variation, smoothness (1)")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="adam", help="adam (default) or lbfgs")
    p.add_argument("--init", choices=("content", "noise"), default="content", help="start image (content)")
    p.add_argument(
        "--preserve-colour",
        "--preserve-color",
        action="store_true",
        help="keep the content's colours: the result's luminance with the content's chroma (YCbCr)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the noise start (0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (auto)")
    p.add_argument(
        "--weights",
        "--model",
        metavar="PATH",
        help="the network: a cnnkit run folder or .ckpt, a torchvision VGG-19 state dict (.pth/.safetensors; the "
        "paper's layers), or Lite0 weights; default: the pretrained EfficientNet-Lite0 package",
    )
    p.add_argument(
        "--layers",
        metavar="CONTENT:STYLE1,STYLE2",
        help="module names of the content layer and the style layers (e.g. conv4_2:conv1_1,conv2_1,conv3_1)",
    )
    p.add_argument(
        "--strip",
        type=flag_type(Range(0, None)),
        metavar="K",
        help="a frame of OUT_progress.png every K steps (default: about 6 frames; 0: no strip)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_stylize)


def cmd_stylize(args: argparse.Namespace) -> int:
    from cnnkit.tasks.style.api import StyleSettings, stylize
    from cnnkit.tasks.style.optimise import LossWeights

    settings = StyleSettings(
        size=args.size,
        steps=args.steps,
        weights=LossWeights(content=args.content_weight, style=args.style_weight, tv=args.tv_weight),
        optimizer=args.optimizer,
        init=args.init,
        preserve_colour=args.preserve_colour,
        seed=args.seed,
        device=args.device,
        network=args.weights,
        layers=args.layers,
        strip_every=args.strip,
    )
    stylize(args.content, args.style, args.out, settings, quiet=args.quiet)
    return 0
