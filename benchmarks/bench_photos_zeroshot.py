"""How separable are a photo stand-in's classes for the pretrained features at all? The ImageNet
head of EfficientNet-Lite0 (the package's weights, no training) on the stand-in's validation images:
an image counts as right when its probability mass on the ImageNet classes of its own kind (e.g.
dogs: 151-268) is larger than the mass on the other class's kind (cats: 281-285). The issue's real
ant/bee photos had "ant" or "bee" in the zero-shot top-5 for about 90-95 % of images; a stand-in
upscaled from 32 px may carry less than that, which bounds what head-only training on its features
can reach. The "own kind in the top-5" column is the issue's measure.

    .venv/bin/python benchmarks/bench_photos_zeroshot.py                      # cat-dog
    .venv/bin/python benchmarks/bench_photos_zeroshot.py --pairs cat-dog automobile-horse ship-truck
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_photos import PAIRS, TARBALL, build_standin
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
# ImageNet-1k class indices of each CIFAR-10 class's kind (names checked with timm.data.ImageNetInfo)
KINDS = {
    "dog": range(151, 269),  # Chihuahua ... Mexican hairless
    "cat": range(281, 286),  # tabby ... Egyptian cat
    "horse": (339, 603),  # sorrel, horse cart
    "automobile": (407, 436, 468, 479, 511, 581, 609, 627, 656, 661, 717, 734, 751, 817),  # cars, grille, wheel
    "ship": (403, 484, 510, 554, 625, 628, 724, 780, 814, 833, 871, 913, 914),  # carriers, liners, boats, ...
    "truck": (555, 569, 675, 717, 734, 864, 867),  # fire engine, garbage truck, vans, pickup, tow, trailer truck
}


def zero_shot(model, folder: Path, pair: tuple[str, str]) -> dict:
    from cnnkit.data.images import load_image
    from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD

    mean, std = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1), torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    rows = {}
    for cls in pair:
        other = pair[1] if cls == pair[0] else pair[0]
        own, rival = list(KINDS[cls]), list(KINDS[other])
        files = sorted((folder / "val" / cls).iterdir())
        x = torch.stack([torch.from_numpy(load_image(f, 3, (224, 224), "bicubic")) for f in files])
        with torch.no_grad():
            p = torch.softmax(model((x.float() / 255 - mean) / std), 1)
        mine, theirs = p[:, own].sum(1), p[:, rival].sum(1)
        top5 = p.topk(5, 1).indices
        rows[cls] = {
            "images": len(files),
            "zero_shot_right": round(float((mine > theirs).float().mean()), 4),
            "own_kind_in_top5": round(sum(any(int(i) in own for i in row) for row in top5) / len(files), 4),
            "mass_on_both_kinds": round(float((mine + theirs).mean()), 4),
        }
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", nargs="+", default=["cat-dog"], choices=list(PAIRS))
    ap.add_argument("--out", default="bench_photos_zeroshot", help="results stem in benchmarks/results/")
    args = ap.parse_args()
    from cnnkit.models import create_model

    model = create_model("efficientnet_lite0", num_classes=1000, in_chans=3, pretrained=True).eval()
    t0, load_before, pairs = time.perf_counter(), os.getloadavg(), {}
    for name in args.pairs:
        with tempfile.TemporaryDirectory() as tmp:
            build_standin(TARBALL, Path(tmp), PAIRS[name])
            rows = zero_shot(model, Path(tmp), PAIRS[name])
        n = sum(r["images"] for r in rows.values())
        pairs[name] = {
            "per_class": rows,
            "zero_shot_accuracy": round(sum(r["zero_shot_right"] * r["images"] for r in rows.values()) / n, 4),
            "own_kind_in_top5": round(sum(r["own_kind_in_top5"] * r["images"] for r in rows.values()) / n, 4),
        }
    command = "python benchmarks/bench_photos_zeroshot.py " + " ".join(sys.argv[1:])
    result = {
        "benchmark": "bench_photos_zeroshot",
        "command": command,
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "load_average": [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]],
        "seconds": round(time.perf_counter() - t0, 1),
        "kinds": {k: list(v) for k, v in KINDS.items()},
        "pairs": pairs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Zero-shot: the photo stand-ins under the pretrained ImageNet head",
        "",
        "EfficientNet-Lite0 (the package's weights, no training), 224 px bicubic, on each stand-in's 75 + 75 "
        "validation images (CIFAR-10 test images upscaled from 32 px, as `bench_photos.py` builds them). "
        '"Right": more probability mass on the ImageNet classes of the image\'s own kind than on the other '
        "class's kind (the kinds are listed in the JSON). The issue's real ant/bee photos: own kind in the "
        "top-5 for about 90-95 %.",
        "",
        "| pair | class | images | right (own vs other kind's mass) | its own kind in the top-5 | mass on both kinds |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, r in pairs.items():
        md += [
            f"| {name} | {c} | {x['images']} | {100 * x['zero_shot_right']:.1f} % | {100 * x['own_kind_in_top5']:.1f} % | "
            f"{100 * x['mass_on_both_kinds']:.1f} % |"
            for c, x in r["per_class"].items()
        ]
        md.append(
            f"| {name} | both | {sum(x['images'] for x in r['per_class'].values())} | "
            f"**{100 * r['zero_shot_accuracy']:.1f} %** | **{100 * r['own_kind_in_top5']:.1f} %** | |"
        )
    md += ["", f"Command: `{command}` ({result['seconds']} s).", ""]
    (RESULTS / f"{args.out}.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
