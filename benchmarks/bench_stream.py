"""Streaming vs the decode-once cache, and the folder scan without vs with its cache.

1. Training throughput on a slice of the CIFAR-10 JPEG tarball (../shared/datasets/cifar10-jpg.tar.gz,
   extracted to a temporary folder), in the same run:
   - input pipeline alone: uint8 batches of 64 -> BatchAugment (crop + flip) -> Normalize, from the
     memory-mapped cache vs streamed (`load_batches`, `data.workers` DataLoader processes decoding);
   - `cnnkit.training.trainer.train` end to end (simple_cnn, 32x32), data.stream false vs true:
     steady-state epoch (train + val) time, and summary.json's images/s; runs interleaved and
     the best of `--repeats` kept, since the CPU is shared.
2. The one loader (PIL) vs a torchvision.io fast path (PIL header check for the pixel limit and
   mode, `decode_image` with EXIF orientation, PIL resize so pixels stay identical) on the same JPEGs.
3. Folder scan of a synthetic tree of empty `.jpg` files (never decoded): `scan_tree` with no
   scan cache (os.scandir walk, OS caches warm) vs from the scan cache (stat the folders, read
   the JSON).

Writes JSON and a markdown table.

    .venv/bin/python benchmarks/bench_stream.py --per-class 300 --scan-files 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_data import DEFAULT_TARBALL, extract_slice  # noqa: E402


def pipeline_epochs(split, epochs: int, batch_size: int, mean, std, streamed: bool) -> list[float]:
    import torch

    from cnnkit.data.augment import BatchAugment
    from cnnkit.data.preprocess import Normalize
    from cnnkit.data.stream import load_batches

    aug, norm, g = BatchAugment(translate=4, hflip=True), Normalize(mean, std, "cpu"), torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(split), generator=g)
        index = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
        source = (
            load_batches(split.images, split.labels, index)
            if streamed
            else ((split.images[i], split.labels[i]) for i in index)
        )
        n = 0
        for x, _ in source:
            n += norm(aug(x, g)).shape[0]
        times.append(time.perf_counter() - t0)
    return times


def train_run(
    root: Path, runs: Path, cache: Path, stream: bool, epochs: int, workers: int, threads: int, name: str
) -> dict:
    from cnnkit.config import Config
    from cnnkit.training.trainer import train

    cfg = Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(root),
            "data.image_size": 32,
            "data.cache_dir": str(cache),
            "data.stream": stream,
            "data.workers": workers,
            "train.epochs": epochs,
            "train.batch_size": 64,
            "runtime.num_threads": threads,
            "augment.hflip": True,
            "augment.translate": 4,
            "run.runs_dir": str(runs),
            "run.name": name,
            "run.html_report": False,
        }
    )
    t0 = time.perf_counter()
    run = train(cfg, quiet=True)
    wall = time.perf_counter() - t0
    steady = (
        statistics.median(r["seconds"] for r in run.metrics[1:]) if len(run.metrics) > 1 else run.metrics[0]["seconds"]
    )
    return {
        "epoch_s": [round(r["seconds"], 2) for r in run.metrics],
        "steady_epoch_s": round(steady, 3),
        "train_images_per_s": run.summary["images_per_second"],
        "wall_s": round(wall, 2),
        "val_accuracy": [round(r["val_accuracy"], 4) for r in run.metrics],
    }


def decoder_compare(files: list[Path], size: tuple[int, int]) -> dict:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_image, read_file

    from cnnkit.data.images import load_image, resize_center_crop

    def torchvision_path(p, channels, size):
        with Image.open(p) as im:  # header only: pixel limit and mode, as the one loader checks them
            if (
                im.width * im.height > (Image.MAX_IMAGE_PIXELS or float("inf"))
                or im.format not in ("JPEG", "PNG")
                or im.mode not in ("RGB", "L")
                or "transparency" in im.info
            ):
                return load_image(p, channels, size)
        x = decode_image(read_file(str(p)), mode=ImageReadMode.RGB, apply_exif_orientation=True)
        return (
            np.asarray(resize_center_crop(Image.fromarray(x.permute(1, 2, 0).numpy()), size)).transpose(2, 0, 1).copy()
        )

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    identical = all(np.array_equal(torchvision_path(p, 3, size), load_image(p, 3, size)) for p in files)
    rates = {}
    for name, fn in (("pil", load_image), ("torchvision", torchvision_path)):
        t0 = time.perf_counter()
        for p in files:
            fn(p, 3, size)
        rates[name] = round(len(files) / (time.perf_counter() - t0), 1)
    torch.set_num_threads(prev)
    return {"files": len(files), "identical": identical, "images_per_s": rates}


def scan_bench(top: Path, n_files: int, classes: int, cache: Path) -> dict:
    from cnnkit.data.scan import scan_tree

    per = n_files // classes
    t0 = time.perf_counter()
    for c in range(classes):
        d = top / f"n{c:08d}"
        d.mkdir(parents=True)
        for i in range(per):
            (d / f"n{c:08d}_{i}.JPEG").touch()
    create_s = time.perf_counter() - t0
    time.sleep(2.1)  # a folder modified in the last 2 s is not cached (scan.RACY_SECONDS)
    out = {"files": per * classes, "folders": classes + 1, "create_s": round(create_s, 2)}
    cold, warm = [], []
    for _ in range(3):
        for f in (cache / "scans").glob("*.json"):
            f.unlink()
        t0 = time.perf_counter()
        s = scan_tree(top, cache)
        n = len(s.image_files())
        cold.append(time.perf_counter() - t0)
        assert not s.from_cache and n == per * classes
        t0 = time.perf_counter()
        s = scan_tree(top, cache)
        n = len(s.image_files())
        warm.append(time.perf_counter() - t0)
        assert s.from_cache and n == per * classes
    out.update(
        no_cache_s=round(min(cold), 3),
        cached_s=round(min(warm), 3),
        cache_file_mb=round(sum(f.stat().st_size for f in (cache / "scans").glob("*.json")) / 1e6, 1),
    )
    return out


def scan_only(args) -> int:
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-scan-") as tmp:
        scan = scan_bench(Path(tmp) / "tree", args.scan_files, args.scan_classes, Path(tmp) / "scan-cache")
    scan.update(
        python=platform.python_version(),
        cpu_count=os.cpu_count(),
        platform=platform.platform(),
        load_avg=[round(x, 2) for x in os.getloadavg()],
    )
    out = args.out.with_name(args.out.name + "_scan")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(scan, indent=2))
    md = "\n".join(
        [
            f"# Folder scan: {scan['files']:,} empty .JPEG files in {scan['folders'] - 1:,} class folders (never opened)",
            "",
            "| scan | seconds (best of 3) |",
            "|---|---:|",
            f"| no scan cache (os.scandir walk, OS caches warm) | {scan['no_cache_s']} |",
            f"| from the scan cache (stat every folder, read a {scan['cache_file_mb']} MB JSON) | {scan['cached_s']} |",
            "",
            f"- speed-up {scan['no_cache_s'] / scan['cached_s']:.1f}x; both include listing the files as paths; creating the tree took {scan['create_s']} s",
            f"- {scan['cpu_count']} CPUs, {scan['platform']}, load average {scan['load_avg']}",
            f"- command: `.venv/bin/python benchmarks/bench_stream.py --scan-only --scan-files {args.scan_files} --scan-classes {args.scan_classes}`",
            "",
        ]
    )
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tarball", type=Path, default=DEFAULT_TARBALL)
    p.add_argument(
        "--per-class", type=int, default=300, help="CIFAR-10 training JPEGs per class to extract (10 classes)"
    )
    p.add_argument("--epochs", type=int, default=3, help="epochs of each measurement (the first is warm-up)")
    p.add_argument("--workers", type=int, default=2, help="data.workers of the streamed runs")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads of the training process (runtime.num_threads), both paths"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="train() runs of each path, interleaved; the best is reported (shared CPU)",
    )
    p.add_argument("--scan-files", type=int, default=100_000)
    p.add_argument("--scan-classes", type=int, default=1000)
    p.add_argument(
        "--scan-only",
        action="store_true",
        help="only the folder-scan measurement (e.g. --scan-files 1000000), to <out>_scan.json / .md",
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_stream")
    args = p.parse_args(argv)
    if args.scan_only:
        return scan_only(args)
    if not args.tarball.is_file():
        print(f"bench_stream: {args.tarball} not found", file=sys.stderr)
        return 2

    import torch

    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    steady = lambda t: statistics.median(t[1:]) if len(t) > 1 else t[0]  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-stream-") as tmp:
        tmp = Path(tmp)
        root, cache = tmp / "cifar10", tmp / "cache"
        n_files = extract_slice(args.tarball, root, args.per_class)
        time.sleep(2.1)  # let the scan cache the fresh tree

        base = {
            "dataset": "folder",
            "path": str(root),
            "image_size": 32,
            "cache_dir": str(cache),
            "workers": args.workers,
        }
        cached = build_dataset(DataConfig(**base, stream=False), seed=0)
        t0 = time.perf_counter()
        streamed = build_dataset(DataConfig(**base, stream=True), seed=0)
        streamed_build_s = time.perf_counter() - t0  # scan (cached) + 1024-image mean/std sample
        assert torch.equal(streamed.train.images[torch.arange(64)], cached.train.images[:64])
        n_train = len(cached.train)
        torch.set_num_threads(args.threads)
        pipe_cached = pipeline_epochs(cached.train, args.epochs, 64, cached.mean, cached.std, streamed=False)
        pipe_stream = pipeline_epochs(streamed.train, args.epochs, 64, streamed.mean, streamed.std, streamed=True)
        batches = (n_train // 64) * 64

        runs, trained = tmp / "runs", {False: [], True: []}
        for rep in range(args.repeats):
            for stream in (False, True):
                trained[stream].append(
                    train_run(root, runs, cache, stream, args.epochs, args.workers, args.threads, f"r{rep}-{stream}")
                )
        best = lambda rs: min(rs, key=lambda r: r["steady_epoch_s"])  # noqa: E731
        train_cached, train_stream = best(trained[False]), best(trained[True])
        decoders = decoder_compare(sorted(root.rglob("*.jpg"))[:1000], (32, 32))
        scan = scan_bench(tmp / "tree", args.scan_files, args.scan_classes, tmp / "scan-cache")

    pc, ps = batches / steady(pipe_cached), batches / steady(pipe_stream)
    result = {
        "images": n_files,
        "train_images": n_train,
        "epochs": args.epochs,
        "batch_size": 64,
        "workers": args.workers,
        "threads": args.threads,
        "repeats": args.repeats,
        "pipeline_images_per_s": {"cached": round(pc, 1), "streamed": round(ps, 1)},
        "pipeline_epoch_s": {
            "cached": [round(t, 3) for t in pipe_cached],
            "streamed": [round(t, 3) for t in pipe_stream],
        },
        "train": {
            "cached": train_cached,
            "streamed": train_stream,
            "all_runs": {"cached": trained[False], "streamed": trained[True]},
        },
        "streamed_build_s": round(streamed_build_s, 3),
        "decoders": decoders,
        "scan": scan,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    tc, ts = train_cached, train_stream
    md = [
        f"# Streaming vs decode-once cache: CIFAR-10 JPEG slice ({n_train} training images of {n_files}, 32x32, batches of 64)",
        "",
        f"| ({args.threads} training thread{'s' if args.threads > 1 else ''}; train(): best of {args.repeats} interleaved runs) | decode-once cache | streamed ({args.workers} workers) | streamed / cached |",
        "|---|---:|---:|---:|",
        f"| input pipeline alone (crop+flip, normalise), images/s | {pc:,.0f} | {ps:,.0f} | {ps / pc:.2f} |",
        f"| `train()` simple_cnn, steady epoch (train + val, median after the first), s | {tc['steady_epoch_s']:.2f} | {ts['steady_epoch_s']:.2f} | {ts['steady_epoch_s'] / tc['steady_epoch_s']:.2f} |",
        f"| `train()` images/s (summary.json) | {tc['train_images_per_s']:,.0f} | {ts['train_images_per_s']:,.0f} | {ts['train_images_per_s'] / tc['train_images_per_s']:.2f} |",
        f"| val accuracy per epoch | {tc['val_accuracy']} | {ts['val_accuracy']} | |",
        "",
        f"- streamed dataset set-up (scan from its cache + 1,024-image mean/std sample): {streamed_build_s:.2f} s",
        f"- decoding {decoders['files']} of these JPEGs to 32x32, one thread: PIL (the one loader) {decoders['images_per_s']['pil']:,.0f}/s, "
        f"torchvision.io fast path {decoders['images_per_s']['torchvision']:,.0f}/s (identical pixels: {decoders['identical']})",
        "",
        f"## Folder scan: {scan['files']:,} empty .JPEG files in {scan['folders'] - 1:,} class folders (never opened)",
        "",
        "| scan | seconds (best of 3) |",
        "|---|---:|",
        f"| no scan cache (os.scandir walk, OS caches warm) | {scan['no_cache_s']:.3f} |",
        f"| from the scan cache (stat {scan['folders']:,} folders, read {scan['cache_file_mb']} MB JSON) | {scan['cached_s']:.3f} |",
        "",
        f"- speed-up: {scan['no_cache_s'] / scan['cached_s']:.1f}x; both include listing the files as paths",
        f"- torch {torch.__version__}, {os.cpu_count()} CPUs (shared), {platform.platform()}",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
