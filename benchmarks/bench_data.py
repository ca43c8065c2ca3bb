"""Input-pipeline throughput: cnnkit's decode-once cache vs decoding JPEGs every epoch.

On a slice of the CIFAR-10 JPEG tarball (../shared/datasets/cifar10-jpg.tar.gz, extracted
to a temporary folder), both pipelines produce normalised, augmented (random crop with
4 px padding + horizontal flip) float batches of 256 on the CPU, in the same run:

- textbook: torchvision.datasets.ImageFolder + transforms.v2 + DataLoader(2 workers),
  which decodes every JPEG with PIL in every epoch;
- cnnkit: folder dataset decoded once into the memory-mapped cache, then batches indexed
  from the uint8 tensor, `BatchAugment` and `Normalize` (no PIL after the cache is built).

Reported: images/s for each (steady state: the median epoch after the first), their ratio,
the one-time cache build, the cache-hit load of a later run, the cnnkit loader decoding
without a cache, and peak RSS. Writes JSON and a markdown table.

    .venv/bin/python benchmarks/bench_data.py --per-class 300 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TARBALL = REPO.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def extract_slice(tarball: Path, out: Path, per_class: int) -> int:
    """train/<class>/ first `per_class` files of each class into out/<class>/."""
    n = 0
    with tarfile.open(tarball) as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 3 and parts[0] == "train" and int(parts[2].split(".")[0]) < per_class:
                (out / parts[1]).mkdir(parents=True, exist_ok=True)
                (out / parts[1] / parts[2]).write_bytes(tar.extractfile(m).read())
                n += 1
    return n


def textbook_epochs(root: Path, epochs: int, batch_size: int, workers: int, mean, std) -> list[float]:
    import torch
    from torchvision import datasets
    from torchvision.transforms import v2

    tf = v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomCrop(32, padding=4),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )
    ds = datasets.ImageFolder(str(root), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for x, _y in loader:
            n += x.shape[0]
        times.append(time.perf_counter() - t0)
        assert n == len(ds) and x.dtype == torch.float32
    return times


def cnnkit_epochs(images, epochs: int, batch_size: int, mean, std) -> list[float]:
    import torch

    from cnnkit.data.augment import BatchAugment
    from cnnkit.data.preprocess import Normalize, batches

    aug = BatchAugment(translate=4, hflip=True)
    norm = Normalize(mean, std, "cpu")
    g = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for idx in batches(images.shape[0], batch_size, shuffle=True, generator=g):
            x = norm(aug(images[idx], g))
            n += x.shape[0]
        times.append(time.perf_counter() - t0)
        assert n == images.shape[0] and x.dtype == torch.float32
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tarball", type=Path, default=DEFAULT_TARBALL)
    p.add_argument("--per-class", type=int, default=300, help="training images per class to extract (10 classes)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the textbook pipeline")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads of the cnnkit pipeline (1, like each DataLoader worker; on a busy machine 2 OpenMP "
        "threads spin and make these small batch ops several times slower)",
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_data")
    args = p.parse_args(argv)
    if not args.tarball.is_file():
        print(f"bench_data: {args.tarball} not found", file=sys.stderr)
        return 2

    import torch

    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset
    from cnnkit.data.cache import decode_files
    from cnnkit.data.folder import list_image_files

    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        tmp = Path(tmp)
        root, cache_dir = tmp / "cifar10", tmp / "cache"
        t0 = time.perf_counter()
        n_files = extract_slice(args.tarball, root, args.per_class)
        extract_s = time.perf_counter() - t0
        files = list_image_files(root)

        t0 = time.perf_counter()
        decode_files(files, 3, (32, 32), cache_dir=None)
        decode_nocache_s = time.perf_counter() - t0

        cfg = DataConfig(dataset="folder", path=str(root), image_size=32, val_fraction=0.1, cache_dir=str(cache_dir))
        t0 = time.perf_counter()
        ds = build_dataset(cfg, seed=0)
        build_s = time.perf_counter() - t0  # decode + write the cache + split + mean/std
        t0 = time.perf_counter()
        ds = build_dataset(cfg, seed=0)
        warm_s = time.perf_counter() - t0  # a later run: stat + map the cache
        images = torch.cat([ds.train.images, ds.val.images])  # every image, like ImageFolder
        mean, std = list(ds.mean), list(ds.std)

        torch.set_num_threads(args.threads)
        ck = cnnkit_epochs(images, args.epochs, args.batch_size, mean, std)
        rss_main_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tb = textbook_epochs(root, args.epochs, args.batch_size, args.workers, mean, std)
        rss_children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    steady = lambda t: statistics.median(t[1:]) if len(t) > 1 else t[0]  # noqa: E731
    ck_ips, tb_ips = n_files / steady(ck), n_files / steady(tb)
    result = {
        "images": n_files,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "textbook_workers": args.workers,
        "cnnkit_threads": args.threads,
        "textbook_images_per_s": round(tb_ips, 1),
        "cnnkit_images_per_s": round(ck_ips, 1),
        "speedup": round(ck_ips / tb_ips, 1),
        "textbook_epoch_s": [round(t, 3) for t in tb],
        "cnnkit_epoch_s": [round(t, 4) for t in ck],
        "cache_build_s": round(build_s, 3),
        "cache_build_vs_textbook_epoch": round(build_s / steady(tb), 2),
        "later_run_load_s": round(warm_s, 3),
        "decode_without_cache_s": round(decode_nocache_s, 3),
        "extract_s": round(extract_s, 2),
        "peak_rss_main_mb": round(rss_main_mb, 1),
        "peak_rss_largest_child_mb": round(rss_children_mb, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": __import__("os").cpu_count(),
        "platform": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    md = [
        f"# Input pipeline: CIFAR-10 JPEG slice ({n_files} images, batches of {args.batch_size}, crop+flip, normalised)",
        "",
        "| pipeline | images/s (steady) | per-epoch seconds |",
        "|---|---:|---|",
        f"| textbook: ImageFolder + v2 + DataLoader({args.workers} workers) | {tb_ips:,.0f} | {', '.join(f'{t:.2f}' for t in tb)} |",
        f"| cnnkit: decode-once cache + batched augment ({args.threads} thread) | {ck_ips:,.0f} | {', '.join(f'{t:.3f}' for t in ck)} |",
        "",
        f"- speed-up in steady state: **{ck_ips / tb_ips:.1f}x**",
        f"- one-time cache build (decode, write, split, mean/std): {build_s:.2f} s = {build_s / steady(tb):.2f} textbook epochs",
        f"- a later run loading the cache (stat + memory map, no decoding): {warm_s:.3f} s",
        f"- cnnkit loader decoding all files without the cache: {decode_nocache_s:.2f} s",
        f"- peak RSS: main process {rss_main_mb:.0f} MB, largest worker {rss_children_mb:.0f} MB",
        f"- torch {torch.__version__}, {__import__('os').cpu_count()} CPUs, {platform.platform()}",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
