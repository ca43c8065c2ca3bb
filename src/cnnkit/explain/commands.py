"""CLI verbs of cnnkit.explain: `register(subparsers)` adds them (imports stay light here)."""

from __future__ import annotations

import argparse

from cnnkit.ranges import Range, flag_type

METHODS = ("gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients", "attention", "rollout")


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser(
        "conv-demo",
        help="one convolution worked out step by step (then ReLU and 2x2 max pooling)",
        description='A convolution by hand. Matrices are rows separated by ";" and values by ",", e.g. '
        'cnnkit conv-demo --input "3,5,2;9,7,5;2,0,6" --kernel "1,0,0;1,1,0;0,0,1"',
    )
    p.add_argument("--input", required=True, metavar="ROWS", help='the input, e.g. "3,5,2;9,7,5;2,0,6"')
    p.add_argument("--kernel", required=True, metavar="ROWS", help='the kernel, e.g. "1,0,0;1,1,0;0,0,1"')
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--padding", type=int, default=0)
    p.set_defaults(func=cmd_conv_demo)

    p = sub.add_parser(
        "explain",
        help="heat maps of what drove a prediction (Grad-CAM, saliency...)",
        description="Per image: a PNG with the original, the heat map and the overlay, titled with the prediction. "
        "A folder also gets a contact sheet.",
    )
    p.add_argument("checkpoint", metavar="CKPT_OR_RUN", help="a checkpoint, or a run folder (its best.ckpt)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument(
        "--method",
        choices=METHODS,
        default="gradcam",
        help="attention: a CBAM model's spatial attention map beside Grad-CAM (--layer picks the CBAM block); "
        "rollout: a ViT's attention rollout (class token over the patches)",
    )
    p.add_argument(
        "--layer", metavar="NAME", help="module for Grad-CAM (default: the model's last convolutional stage)"
    )
    p.add_argument("--class", dest="class_name", metavar="NAME", help="explain this class instead of the prediction")
    p.add_argument("--out", metavar="DIR", help="output folder (default: explain/<method> beside the checkpoint)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("featuremaps", help="activation maps of a model's layers for one image, as PNG grids")
    p.add_argument("checkpoint", metavar="CKPT_OR_RUN")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="module names (default: each stage); see --list")
    p.add_argument(
        "--steps",
        action="store_true",
        help="every module inside the layers: conv, batch norm, ReLU, pooling (before/after)",
    )
    p.add_argument("--list", action="store_true", help="print the module names and output shapes, write nothing")
    p.add_argument("--max-channels", type=flag_type(Range(1)), default=32, help="channels shown per layer (default 32)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: featuremaps/ beside the checkpoint)")
    p.set_defaults(func=cmd_featuremaps)

    p = sub.add_parser(
        "filters",
        help="first-layer kernels as images; deeper channels by activation maximisation",
    )
    p.add_argument("checkpoint", metavar="CKPT_OR_RUN")
    p.add_argument(
        "--layer", metavar="NAME", help="a deeper module: show what excites its channels (activation maximisation)"
    )
    p.add_argument("--channels", type=flag_type(Range(1)), default=16, help="how many channels of --layer (default 16)")
    p.add_argument(
        "--steps", type=flag_type(Range(1)), default=128, help="optimisation steps for --layer (default 128)"
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: filters/ beside the checkpoint)")
    p.set_defaults(func=cmd_filters)


def cmd_conv_demo(args: argparse.Namespace) -> int:
    from cnnkit.explain.conv_demo import ConvDemo, parse_matrix

    demo = ConvDemo(parse_matrix(args.input, "input"), parse_matrix(args.kernel, "kernel"), args.stride, args.padding)
    print(demo.text())
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from cnnkit._text import printable
    from cnnkit.explain.api import explain_files

    result = explain_files(
        args.checkpoint,
        args.images,
        method=args.method,
        layer=args.layer,
        class_name=args.class_name,
        out=args.out,
        device=args.device,
    )
    for item in result.items:
        print(
            f"{printable(item.source)}: {item.label} {item.probability:.1%} (explained: {item.target}) -> {printable(str(item.path))}"
        )
    if result.contact_sheet:
        print(f"contact sheet: {result.contact_sheet}")
    for source, error in result.errors:
        print(f"cnnkit explain: could not read {printable(source)}: {printable(error)}")
    return 1 if result.errors or not result.items else 0


def cmd_featuremaps(args: argparse.Namespace) -> int:
    from cnnkit.explain.featuremaps import featuremaps_command

    return featuremaps_command(
        args.checkpoint,
        args.image,
        layers=args.layers,
        steps=args.steps,
        list_only=args.list,
        max_channels=args.max_channels,
        out=args.out,
    )


def cmd_filters(args: argparse.Namespace) -> int:
    from cnnkit.explain.filters import filters_command

    return filters_command(args.checkpoint, layer=args.layer, channels=args.channels, steps=args.steps, out=args.out)
