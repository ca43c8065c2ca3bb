"""CLI verbs of cnnkit.data: `register(subparsers)` adds them (imports stay light here).

- `cnnkit datasets [--data-root DIR] [--json]`: the registered datasets, with classes, size,
  where each is looked for and whether it is there (nothing is read or downloaded).
- `cnnkit data-info (--dataset NAME | --data PATH)`: split sizes, class counts, imbalance,
  mean/std and skipped files of one dataset (building it, so the decode cache is filled).
- `cnnkit augment-preview (--dataset NAME | --data PATH) [--augment PRESET] [--set augment.K=V]`:
  a PNG grid, originals in the first column and augmented versions beside them.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from cnnkit.ranges import Range, flag_type

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

    from cnnkit.data.augment import BatchAugment
    from cnnkit.data.types import Dataset


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser("datasets", help="list the built-in datasets and where they are looked for")
    p.add_argument(
        "--data-root", help="folder holding built-in datasets (default $CNNKIT_DATA or ~/.cache/cnnkit/datasets)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("make", nargs="?", choices=["make"], help="make NAME --out DIR: write a generated dataset's files")
    p.add_argument("name", nargs="?", choices=["mnist-scenes"], help="the generated dataset to write (make)")
    p.add_argument("--out", metavar="DIR", help="make: the folder to write train/ val/ test/ into")
    p.add_argument("--format", choices=["coco", "voc", "yolo"], help="make: the box format (default coco)")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("data-info", help="split sizes, class counts, imbalance and skipped files of a dataset")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", help="built-in dataset name (default mnist-mini)")
    g.add_argument("--data", metavar="PATH", help="a folder of class folders, or a CSV/JSON manifest")
    p.add_argument("--data-root")
    p.add_argument("--image-size", type=flag_type(Range(1, 8192)))
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--label-delimiter", help="manifests: separator of several labels in one cell (multi-label)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data_info)

    p = sub.add_parser("augment-preview", help="PNG grid of training images and their augmented versions")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", help="built-in dataset name (default mnist-mini)")
    g.add_argument("--data", metavar="PATH", help="a folder of class folders, or a CSV/JSON manifest")
    p.add_argument("--data-root")
    p.add_argument("--image-size", type=flag_type(Range(1, 8192)))
    p.add_argument(
        "--augment",
        default=None,
        help="preset: none, light, standard or strong (default: the config's augment section)",
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="augment.KEY=VALUE", help="override an augment key (repeatable)"
    )
    p.add_argument("--rows", type=flag_type(Range(1, 1000)), default=8, help="images (rows)")
    p.add_argument(
        "--versions",
        type=flag_type(Range(0, 100)),
        default=6,
        help="augmented versions per image (columns after the original)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        metavar="DIR_OR_FILE.png",
        help="a folder or a .png file; default: a new folder runs/augment-preview-<dataset>-<preset>-<time>/",
    )
    p.add_argument("--runs-dir", default="runs", help="where that default folder goes (default runs/)")
    p.set_defaults(func=cmd_augment_preview)


def dataset_rows(root: str | None = None) -> list[dict[str, Any]]:
    from cnnkit.data import list_datasets

    rows = []
    for d in list_datasets():
        where, status = d.find(root)
        rows.append(
            {
                "name": d.name,
                "classes": d.num_classes,
                "size": d.size,
                "description": d.description,
                "looked_for": where,
                "status": status,
            }
        )
    return rows


def cmd_datasets(args: argparse.Namespace) -> int:
    if getattr(args, "make", None):  # cnnkit datasets make mnist-scenes --out DIR (data/scenes.py)
        from cnnkit.data.scenes import write_scenes_cli

        return write_scenes_cli(args.name, args.out, getattr(args, "data_root", None), getattr(args, "format", None))
    rows = dataset_rows(getattr(args, "data_root", None))
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(r["name"]) for r in rows) + 2
    for r in rows:
        classes = r["classes"] if r["classes"] is not None else "any"
        print(f"{r['name']:<{w}}{r['description']}")
        print(f"{'':<{w}}classes: {classes}; size: {r['size']}")
        print(f"{'':<{w}}looked for in: {r['looked_for']}  [{r['status']}]")
    return 0


def data_summary(ds: Dataset) -> dict[str, Any]:
    """Split sizes, per-class counts per split, imbalance ratio, normalisation and skipped files."""
    from cnnkit.data.balance import imbalance_ratio

    splits = {s: getattr(ds, s) for s in ("train", "val", "test") if getattr(ds, s) is not None}
    counts = {s: sp.class_counts(ds.num_classes) for s, sp in splits.items()}
    return {
        "dataset": ds.name,
        "source": ds.source,
        "num_classes": ds.num_classes,
        "multi_label": ds.multi_label,
        "input": {"channels": ds.channels, "size": list(ds.image_size), "mean": list(ds.mean), "std": list(ds.std)},
        "split_sizes": {s: len(sp) for s, sp in splits.items()},
        "class_counts": {s: dict(zip(ds.class_names, c)) for s, c in counts.items()},
        "train_imbalance_ratio": round(imbalance_ratio(counts["train"]), 3),
        "skipped": [{"path": s.path, "reason": s.reason} for s in ds.skipped],
    }


def format_summary(m: dict[str, Any]) -> str:
    splits = list(m["split_sizes"])
    names = list(m["class_counts"]["train"])
    width = max(8, *(len(n) for n in names)) if names else 8
    inp = m["input"]
    out = [
        f"{m['dataset']} ({m['source']}): {m['num_classes']} classes{' (multi-label)' if m['multi_label'] else ''}, "
        f"{inp['channels']}x{inp['size'][0]}x{inp['size'][1]}",
        "split sizes: " + ", ".join(f"{s} {n}" for s, n in m["split_sizes"].items()),
        f"mean {inp['mean']}, std {inp['std']}",
        f"train imbalance (largest / smallest class): {m['train_imbalance_ratio']}",
        "",
        f"{'class':<{width}}" + "".join(f"{s:>8}" for s in splits),
    ]
    out += [f"{n:<{width}}" + "".join(f"{m['class_counts'][s][n]:>8}" for s in splits) for n in names]
    if m["skipped"]:
        out += ["", f"skipped {len(m['skipped'])} unreadable files:"] + [
            f"  {s['path']}: {s['reason']}" for s in m["skipped"][:50]
        ]
        if len(m["skipped"]) > 50:
            out.append(f"  ... and {len(m['skipped']) - 50} more")
    return "\n".join(out)


def cmd_data_info(args: argparse.Namespace) -> int:
    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    cfg = DataConfig(
        dataset="folder" if args.data else (args.dataset or "mnist-mini"),
        path=args.data,
        root=args.data_root,
        image_size=args.image_size,
        channels=args.channels,
        label_delimiter=args.label_delimiter,
    )
    m = data_summary(build_dataset(cfg, seed=args.seed))
    print(json.dumps(m, indent=2) if args.json else format_summary(m))
    return 0


def preview_grid(
    images: torch.Tensor, augment: BatchAugment, versions: int, generator: torch.Generator, scale: int = 3, gap: int = 2
) -> npt.NDArray[np.uint8]:
    """(H', W', 3) uint8 grid: row i = image i, then `versions` augmented copies of it; a header
    band names the columns ("original", "augmented 1", ...)."""
    import numpy as np
    import torch

    cols = [images] + [augment(images, generator) for _ in range(versions)]
    n, c, h, w = images.shape
    tiles = torch.stack(cols, 1)  # (N, 1 + V, C, H, W)
    if c == 1:
        tiles = tiles.expand(-1, -1, 3, -1, -1)
    tiles = tiles.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    th, tw = h * scale, w * scale
    grid = np.full((n * (th + gap) + gap, len(cols) * (tw + gap) + gap, 3), 255, np.uint8)
    for i in range(n):
        for j in range(len(cols)):
            y, x = gap + i * (th + gap), gap + j * (tw + gap)
            grid[y : y + th, x : x + tw] = tiles[i, j].permute(1, 2, 0).numpy()
    return _with_header(grid, ["original"] + [f"augmented {v}" for v in range(1, versions + 1)], tw, gap)


def _with_header(
    grid: npt.NDArray[np.uint8], labels: list[str], tile_width: int, gap: int, height: int = 14
) -> npt.NDArray[np.uint8]:
    """The grid with a white band on top naming each column (the originals' column first)."""
    import numpy as np
    from PIL import Image, ImageDraw

    band = Image.new("RGB", (grid.shape[1], height), "white")
    draw = ImageDraw.Draw(band)
    for j, text in enumerate(labels):
        if draw.textlength(text) > tile_width:  # narrow tiles: a shorter label
            text = "orig." if j == 0 else f"aug {j}"
        draw.text((gap + j * (tile_width + gap) + 1, 1), text, fill=(200, 0, 0) if j == 0 else (0, 0, 0))
    return np.concatenate([np.asarray(band), grid], 0)


def cmd_augment_preview(args: argparse.Namespace) -> int:

    import torch
    from PIL import Image

    from cnnkit.config import Config, DataConfig, parse_value
    from cnnkit.data import build_dataset
    from cnnkit.data.augment import BatchAugment
    from cnnkit.data.presets import apply_preset
    from cnnkit.errors import ConfigError

    data_cfg = DataConfig(
        dataset="folder" if args.data else (args.dataset or "mnist-mini"),
        path=args.data,
        root=args.data_root,
        image_size=args.image_size,
    )
    ds = build_dataset(data_cfg, seed=args.seed)
    aug_cfg = Config().augment
    if args.augment:
        aug_cfg = apply_preset(aug_cfg, args.augment, dataset=data_cfg.dataset, image_size=ds.image_size[0])
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("augment."):
            raise ConfigError(f"--set {item!r}: expected augment.KEY=VALUE, e.g. --set augment.rotate=15")
        overrides[key] = parse_value(value)
    aug_cfg = Config(augment=aug_cfg).with_overrides(overrides, source="--set").augment
    g = torch.Generator().manual_seed(args.seed)
    idx = torch.randperm(len(ds.train), generator=g)[: args.rows]
    grid = preview_grid(ds.train.images[idx], BatchAugment.from_config(aug_cfg), args.versions, g)
    from cnnkit.io_safety import write_file
    from cnnkit.output_dir import output_file

    out = output_file(
        args.out,
        "augment_preview.png",
        runs_dir=args.runs_dir,
        name=None,
        what="augment-preview",
        dataset=ds.name,
        model=args.augment or "config",
    )
    write_file(out, lambda f: Image.fromarray(grid).save(f, format="PNG"), hint="or choose another --out")
    print(f"wrote {out} ({len(idx)} images: the original in the first column, then {args.versions} augmented versions)")
    return 0
