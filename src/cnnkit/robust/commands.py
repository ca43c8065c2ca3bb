"""CLI verbs of cnnkit.robust: `attack` and `robust-eval` (imports stay light here)."""

from __future__ import annotations

import argparse

from cnnkit.ranges import Range, flag_type

EPS_HELP = "pixel units of the 0-1 image, a fraction or a number: 8/255, 0.1"


def _eps_type(flag: str):
    """argparse type: parse_eps, its error (naming the flag) shown by argparse."""

    def parse(text: str) -> float:
        from cnnkit.errors import ConfigError
        from cnnkit.robust.attacks import parse_eps

        try:
            return parse_eps(text, flag)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _eps_list_type(flag: str):
    def parse(text: str) -> list[float]:
        from cnnkit.errors import ConfigError
        from cnnkit.robust.attacks import parse_eps_list

        try:
            return parse_eps_list(text, flag)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def add_robust_flags(p, prefix: str = "--robust-") -> None:
    """--robust-n, --robust-eps, --robust-steps, --robust-restarts (shared by robust-eval and evaluate --robust)."""
    p.add_argument(
        f"{prefix}n",
        dest="robust_n",
        type=flag_type(Range(1)),
        default=None,
        help="images of the seeded test subset (default 500: about a minute on 2 cores)",
    )
    p.add_argument(
        f"{prefix}eps",
        dest="robust_eps",
        type=_eps_list_type(f"{prefix}eps"),
        default=None,
        metavar="LIST",
        help="comma-separated L∞ sizes, e.g. 0,2/255,8/255 (default: 0..8/255 for photos, 0..0.3 for 1-channel data)",
    )
    p.add_argument(
        f"{prefix}steps", dest="robust_steps", type=flag_type(Range(1)), default=10, help="PGD steps (default 10)"
    )
    p.add_argument(
        f"{prefix}restarts",
        dest="robust_restarts",
        type=flag_type(Range(1)),
        default=1,
        help="PGD random restarts (default 1)",
    )


# `cnnkit train`'s adversarial-training flags: flag dest -> dotted config key (cli.TRAIN_FLAGS takes them in)
ADV_FLAGS = {
    "adv_train": "adv.method",
    "adv_eps": "adv.eps",
    "adv_steps": "adv.steps",
    "adv_step_size": "adv.step_size",
    "adv_warmup": "adv.warmup_epochs",
    "adv_fraction": "adv.fraction",
}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """`cnnkit train --adv-train fgsm-rs|pgd` and its settings (the config's adv: section)."""
    g = p.add_argument_group("adversarial training (L∞, pixel units of the 0-1 image)")
    g.add_argument(
        "--adv-train",
        choices=("fgsm-rs", "pgd"),
        help="train on adversarial examples: fgsm-rs (FGSM from a random start, fast; Wong et al. 2020) or pgd "
        "(Madry et al. 2018); the run ends with its accuracy under PGD at --adv-eps",
    )
    g.add_argument(
        "--adv-eps", type=_eps_type("--adv-eps"), metavar="EPS", help=f"size of the change, {EPS_HELP} (default 0.1)"
    )
    g.add_argument("--adv-steps", type=int, metavar="N", help="pgd: attack steps per batch (default 7)")
    g.add_argument(
        "--adv-step-size",
        type=_eps_type("--adv-step-size"),
        metavar="SIZE",
        help="attack step (default 1.25*eps for fgsm-rs, 2.5*eps/steps for pgd)",
    )
    g.add_argument(
        "--adv-warmup", type=int, metavar="EPOCHS", help="grow eps linearly over the first N epochs (default 0: off)"
    )
    g.add_argument(
        "--adv-fraction",
        type=float,
        metavar="SHARE",
        help="share of each batch made adversarial, the rest stays clean (default 1)",
    )


def train_hooks(args: argparse.Namespace, cfg):
    """The run's hooks for `cnnkit train`: adversarial training when cfg.adv.method is set (cnnkit.robust.training).
    An --adv-* flag without --adv-train (or adv.method in the config) is an error that says so."""
    from cnnkit.errors import ConfigError
    from cnnkit.robust.training import train_hooks as hooks_for

    given = [f"--{d.replace('_', '-')}" for d in ADV_FLAGS if d != "adv_train" and getattr(args, d, None) is not None]
    if given and cfg.adv.method == "none":
        raise ConfigError(
            f"{', '.join(given)} set adversarial training up, but it is off: add --adv-train fgsm-rs or --adv-train pgd"
        )
    return hooks_for(cfg, quiet=getattr(args, "quiet", False))


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser(
        "attack",
        help="adversarial examples (FGSM, PGD) of images, as PNGs you can feed back to predict",
        description="Per image: a PNG with the original, the amplified perturbation and the adversarial image, each titled "
        "with the prediction; the adversarial image itself (lossless PNG at the model's input size) in adversarial/. "
        "eps is in pixel units of the 0-1 image (before the checkpoint's normalisation). A folder also gets a contact sheet; "
        "attack.csv lists each file's prediction before and after and the size of the change.",
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help="a checkpoint, or a run folder (its best.ckpt)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER")
    p.add_argument("--method", choices=("fgsm", "pgd"), default="pgd")
    p.add_argument(
        "--eps", type=_eps_type("--eps"), default=8 / 255, help=f"size of the change, {EPS_HELP} (default 8/255)"
    )
    p.add_argument(
        "--norm",
        choices=("linf", "l2"),
        default="linf",
        help="linf: each pixel moves at most eps; l2: the whole change has length eps",
    )
    p.add_argument("--steps", type=flag_type(Range(1)), default=10, help="PGD steps (default 10)")
    p.add_argument(
        "--step-size", type=_eps_type("--step-size"), default=None, help="PGD step (default 2.5 * eps / steps)"
    )
    p.add_argument(
        "--restarts",
        type=flag_type(Range(1)),
        default=1,
        help="PGD random restarts; per image the first that succeeds is kept (default 1)",
    )
    p.add_argument(
        "--targeted", action="store_true", help="push the images toward --target instead of away from their prediction"
    )
    p.add_argument("--target", metavar="CLASS", help="the class for --targeted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="output folder (default: attack/<method>-<norm> beside the checkpoint)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser(
        "robust-eval",
        help="accuracy against FGSM and PGD over several eps (JSON, CSV, plot into RUN/robust/)",
        description="Accuracy of a run under FGSM and PGD (L∞, pixel units of the 0-1 image) on a fixed seeded subset of "
        "its test split; writes robust.json, robust.csv, accuracy_vs_eps.png and example attacks into RUN/robust/ "
        "(shown by report.html). Warns when the gradients look masked.",
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT")
    add_robust_flags(p, "--")
    p.add_argument("--data-root")
    p.add_argument("--seed", type=int, default=0, help="picks the subset and the random starts (default 0)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: robust/ beside the checkpoint)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_robust_eval)


def extend(parsers: dict[str, argparse.ArgumentParser]) -> None:
    """What this area adds to the engine's and evaluate's verbs (cli calls it once all verbs exist):
    `train --adv-train ...` (flags, their config keys, and the run's hooks), `evaluate --robust`."""
    train = parsers["train"]
    add_train_arguments(train)
    train.set_defaults(extra_flag_keys={**(train.get_default("extra_flag_keys") or {}), **ADV_FLAGS})
    train.set_defaults(hook_factory=train_hooks)
    ev = parsers["evaluate"]
    g = ev.add_argument_group("robustness (cnnkit.robust)")
    g.add_argument(
        "--robust",
        action="store_true",
        help="also accuracy against FGSM and PGD over several eps, into robust/ beside the checkpoint (see cnnkit robust-eval)",
    )
    add_robust_flags(g)
    ev.set_defaults(after_evaluate=[*(ev.get_default("after_evaluate") or []), _robust_after_evaluate])


def _robust_after_evaluate(args: argparse.Namespace) -> None:
    """`evaluate --robust`: the robustness table after the metrics."""
    if args.robust:
        print()
        run_robust(args.checkpoint, args)


def cmd_attack(args: argparse.Namespace) -> int:
    from cnnkit._text import printable
    from cnnkit.robust.attack_files import attack_files
    from cnnkit.robust.attacks import AttackSpec

    spec = AttackSpec(
        method=args.method,
        eps=args.eps,
        norm=args.norm,
        steps=args.steps,
        step_size=args.step_size,
        restarts=args.restarts,
        targeted=args.targeted,
        seed=args.seed,
    )
    result = attack_files(args.checkpoint, args.images, spec, target=args.target, out=args.out, device=args.device)
    for it in result.items:
        mark = "FOOLED" if it.fooled else "held"
        print(
            f"{printable(it.source)}: {it.before} {it.p_before:.1%} -> {it.after} {it.p_after:.1%} ({mark}; L∞ {it.linf * 255:.1f}/255, L2 {it.l2:.3f}) -> {printable(str(it.image))}"
        )
    fooled = sum(it.fooled for it in result.items)
    print(f"{fooled}/{len(result.items)} predictions changed; wrote {result.out_dir}")
    for source, error in result.errors:
        print(f"cnnkit attack: could not read {printable(source)}: {printable(error)}")
    return 1 if result.errors or not result.items else 0


def run_robust(checkpoint, args: argparse.Namespace, out=None) -> dict:
    """robust_evaluate with the --robust-* flags; prints the table and the files (used by evaluate --robust too)."""
    from cnnkit.errors import ConfigError
    from cnnkit.robust.evaluate import DEFAULT_N, format_robust, robust_evaluate

    if getattr(args, "data", None) or getattr(args, "dataset", None):
        raise ConfigError(
            "--robust measures the run's own dataset; drop --data / --dataset, or evaluate those without --robust"
        )
    r = robust_evaluate(
        checkpoint, n=args.robust_n or DEFAULT_N, eps=args.robust_eps, steps=args.robust_steps, restarts=getattr(args, "robust_restarts", 1),
        seed=getattr(args, "seed", 0) or 0,
        split=getattr(args, "split", None) or "test", data_root=getattr(args, "data_root", None), device=getattr(args, "device", "cpu"), out=out,
    )  # fmt: skip
    print(format_robust(r))
    print("\nwrote " + "\n      ".join(r["files"]))
    return r


def cmd_robust_eval(args: argparse.Namespace) -> int:
    run_robust(args.checkpoint, args, out=args.out)
    return 0
