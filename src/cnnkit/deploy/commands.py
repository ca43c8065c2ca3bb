"""CLI verbs of cnnkit.deploy: export, quantize, bench-infer, prune (imports stay light here)."""

from __future__ import annotations

import argparse

from cnnkit.ranges import Range, flag_type

FORMATS = ("onnx",)


def extend(parsers: dict[str, argparse.ArgumentParser]) -> None:
    """`cnnkit predict --backend NAME` (other than eager) runs the model through this area's backends."""
    parsers["predict"].set_defaults(backend_loader=_load_backend)


def _load_backend(path, backend: str, device: str = "cpu"):
    from cnnkit.deploy.predict_backend import load_backend

    return load_backend(path, backend, device=device)


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    _add_export(sub)
    _add_quantize(sub)
    _add_bench_infer(sub)
    _add_prune(sub)


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="a checkpoint to ONNX, with a parity check against PyTorch",
        description="Writes model.onnx (default: the run folder's export/) with a dynamic batch axis and the checkpoint's "
        "metadata (class names, input size/channels, mean/std, task, cnnkit version), then compares PyTorch and onnxruntime "
        "on test images (random inputs when the data is not reachable): the numbers go to model.parity.json beside the file, "
        "and the exit status is 1 when a top-1 differs or a logit differs by more than --tolerance.",
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT", help="a run folder (its best.ckpt) or a checkpoint")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="export format (default onnx)")
    p.add_argument("--opset", type=flag_type(Range(13, 23)), default=18, help="ONNX opset (default 18)")
    p.add_argument(
        "--exporter",
        choices=("auto", "dynamo", "torchscript"),
        default="auto",
        help="torch.onnx exporter: auto tries dynamo, then torchscript (default auto)",
    )
    p.add_argument("--out", metavar="FILE", help="output file (default: export/model.onnx in the run folder)")
    p.add_argument(
        "--images", type=flag_type(Range(1)), default=64, help="test images for the parity check (default 64)"
    )
    p.add_argument(
        "--tolerance",
        type=flag_type(Range(0, None, lo_open=True), float),
        default=1e-3,
        help="largest allowed |logit difference| (default 1e-3)",
    )
    p.set_defaults(func=cmd_export)


def _add_quantize(sub) -> None:
    p = sub.add_parser(
        "quantize",
        help="int8 post-training quantization (onnxruntime), with the accuracy before and after",
        description="static: activation ranges calibrated on --calib training images, per-channel int8 weights, QDQ format; "
        "dynamic: int8 weights, activations quantized per batch. The test accuracy of the fp32 and int8 files goes to "
        "<file>.json beside the int8 file; a drop above --max-drop points exits with status 1.",
    )
    p.add_argument(
        "model", metavar="RUN_CKPT_OR_ONNX", help="a run folder, a checkpoint (exported first) or an exported .onnx"
    )
    p.add_argument("--mode", choices=("static", "dynamic"), default="static", help="default static")
    p.add_argument(
        "--calib", type=flag_type(Range(1)), default=256, help="training images for static calibration (default 256)"
    )
    p.add_argument(
        "--max-drop",
        type=flag_type(Range(0), float),
        default=1.0,
        help="largest allowed test-accuracy drop in points (default 1.0)",
    )
    p.add_argument(
        "--reduce-range",
        choices=("auto", "on", "off"),
        default="auto",
        help="7-bit weights, for CPUs without VNNI (default auto: on there)",
    )
    p.add_argument("--out", metavar="FILE", help="output file (default: model.int8.onnx beside the fp32 file)")
    p.set_defaults(func=cmd_quantize)


def _add_bench_infer(sub) -> None:
    p = sub.add_parser(
        "bench-infer",
        help="CPU inference backends compared: latency, throughput, accuracy",
        description="fp32 eager, channels-last, bf16 autocast (CPUs with native bf16), torch.compile, onnxruntime fp32 and int8, torch.ao int8 (x86 engine, with its parity vs eager): "
        "batch-1 latency p50/p95, throughput at --batch, and test accuracy on the run's own data. Writes export/bench_infer.json.",
    )
    p.add_argument("model", metavar="RUN_CKPT_OR_ONNX")
    p.add_argument("--threads", type=flag_type(Range(1)), help="intra-op threads for every backend (default: torch's)")
    p.add_argument("--batch", type=flag_type(Range(1)), default=32, help="batch size for throughput (default 32)")
    p.add_argument(
        "--backends",
        nargs="+",
        metavar="NAME",
        help="only these (eager channels-last bf16 compile onnxruntime onnxruntime-int8 torch-int8)",
    )
    p.add_argument("--images", type=flag_type(Range(1)), default=1000, help="test images for accuracy (default 1000)")
    p.add_argument(
        "--repeats", type=flag_type(Range(3)), default=30, help="timed batch-1 runs per backend (default 30)"
    )
    p.add_argument("--pruned", metavar="RUN_OR_CKPT", help="also time this pruned model (eager)")
    p.add_argument("--out", metavar="FILE", help="JSON file (default: export/bench_infer.json in the run folder)")
    p.set_defaults(func=cmd_bench_infer)


def _add_prune(sub) -> None:
    p = sub.add_parser(
        "prune",
        help="structured channel pruning (Torch-Pruning) with recovery fine-tuning",
        description="Removes whole channels with Torch-Pruning's dependency graph (residual and concatenation layers handled), "
        "then fine-tunes to recover through the training engine (the run's recipe; the recovery run is <out>/recovery/, "
        "resumable with cnnkit train --resume); writes a new run folder (default <run>-pruned) whose best.ckpt rebuilds from itself and "
        "records its parent, and prune.json with params, MACs, latency and accuracy before, after pruning and after recovery. "
        "--unstructured zeroes single weights instead (for teaching: dense kernels gain no speed from it).",
    )
    p.add_argument("checkpoint", metavar="RUN_OR_CKPT")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--target-macs",
        type=flag_type(Range(0, 1, lo_open=True, hi_open=True), float),
        metavar="SHARE",
        help="share of the MACs to keep, 0..1 (e.g. 0.5)",
    )
    g.add_argument(
        "--amount",
        type=flag_type(Range(0, 1, lo_open=True, hi_open=True), float),
        metavar="SHARE",
        help="share of channels (or, with --unstructured, weights) to remove, 0..1",
    )
    p.add_argument(
        "--importance", choices=("l1", "l2", "taylor"), default="l2", help="channel importance (default l2 magnitude)"
    )
    p.add_argument(
        "--steps",
        type=flag_type(Range(1)),
        default=1,
        help="prune in this many steps, re-ranking channels each time (default 1)",
    )
    p.add_argument(
        "--unstructured",
        action="store_true",
        help="global L1 weight pruning (torch.nn.utils.prune): no speed-up on dense kernels",
    )
    p.add_argument(
        "--finetune-epochs",
        type=flag_type(Range(0)),
        default=0,
        help="recovery epochs, trained by the training engine with the run's own recipe in <out>/recovery/ (default 0)",
    )
    p.add_argument(
        "--lr",
        type=flag_type(Range(0, None, lo_open=True), float),
        help="recovery peak learning rate (default: the run's own optim.lr)",
    )
    p.add_argument(
        "--batch-size", type=flag_type(Range(1)), help="recovery batch size (default: the run's own train.batch_size)"
    )
    p.add_argument(
        "--train-images",
        type=flag_type(Range(1)),
        help="recover on about this many training images, taken per class (default all)",
    )
    p.add_argument("--out", metavar="DIR", help="new run folder (default: <run>-pruned beside the run)")
    p.set_defaults(func=cmd_prune)


def cmd_export(args: argparse.Namespace) -> int:
    from cnnkit.deploy.export import ParityError, export_checkpoint

    try:
        r = export_checkpoint(
            args.checkpoint,
            out=args.out,
            opset=args.opset,
            exporter=args.exporter,
            images=args.images,
            tolerance=args.tolerance,
        )
    except ParityError as e:
        print(f"cnnkit export: {e}")
        return 1
    print(f"wrote {r.path} (exporter {r.exporter}, opset {args.opset})")
    print(r.parity.text())
    print(f"wrote {r.parity_path}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from cnnkit.deploy.quantize import QuantizationError, quantize

    rr = {"auto": None, "on": True, "off": False}[args.reduce_range]
    try:
        r = quantize(
            args.model, mode=args.mode, calib=args.calib, max_drop=args.max_drop, out=args.out, reduce_range=rr
        )
    except QuantizationError as e:
        print(f"cnnkit quantize: {e}")
        return 1
    rep = r.report
    print(
        f"wrote {r.path} ({rep['mode']}, {rep['format']}, per-channel, reduce_range {rep['reduce_range']}; {rep['size_bytes']['fp32']:,} -> {rep['size_bytes']['int8']:,} bytes)"
    )
    if rep["accuracy_fp32"] is not None:
        print(
            f"test accuracy on {rep['test_images']} images: fp32 {rep['accuracy_fp32']:.2%}, int8 {rep['accuracy_int8']:.2%} (drop {rep['drop_points']:+.2f} points, allowed {args.max_drop:g})"
        )
    else:
        print(rep["note"])
    print(f"wrote {r.report_path}")
    return 0


def cmd_bench_infer(args: argparse.Namespace) -> int:
    from cnnkit.deploy.backends import NAMES
    from cnnkit.deploy.bench import bench_infer, table
    from cnnkit.errors import ConfigError

    unknown = [b for b in args.backends or [] if b not in NAMES]
    if unknown:
        raise ConfigError(f"--backends: unknown {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    r = bench_infer(
        args.model,
        threads=args.threads,
        batch=args.batch,
        backends=args.backends,
        images=args.images,
        repeats=args.repeats,
        pruned=args.pruned,
        out=args.out,
    )
    print(table(r))
    print(f"wrote {r['path']}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from cnnkit.deploy.prune import prune_run, table

    r = prune_run(
        args.checkpoint, target_macs=args.target_macs, amount=args.amount, importance=args.importance, steps=args.steps,
        unstructured=args.unstructured, finetune_epochs=args.finetune_epochs, lr=args.lr, batch_size=args.batch_size,
        train_images=args.train_images, out=args.out,
    )  # fmt: skip
    print(table(r))
    print(f"wrote {r['checkpoint']} and {r['run_dir']}/export/prune.json")
    return 0
