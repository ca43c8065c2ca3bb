"""How separable are the photo stand-in's classes for the pretrained features at all? The ImageNet
head of EfficientNet-Lite0 (the package's weights, no training) on the stand-in's validation images:
a cat/dog image counts as right when its probability mass on ImageNet's dog classes (151-268)
against its cat classes (281-285) points the right way. The issue's real ant/bee photos had "ant" or
"bee" in the zero-shot top-5 for about 90-95 % of images; a stand-in upscaled from 32 px may carry
less than that, which bounds what head-only training on its features can reach.

    .venv/bin/python benchmarks/bench_photos_zeroshot.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_photos import PAIRS, TARBALL, build_standin
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
DOGS, CATS = range(151, 269), range(281, 286)  # ImageNet-1k class indices


def main() -> None:
    from cnnkit.data.images import load_image
    from cnnkit.models import create_model
    from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD

    model = create_model("efficientnet_lite0", num_classes=1000, in_chans=3, pretrained=True).eval()
    mean, std = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1), torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    t0, rows = time.perf_counter(), {}
    with tempfile.TemporaryDirectory() as tmp:
        build_standin(TARBALL, Path(tmp), PAIRS["cat-dog"])
        for cls in ("cat", "dog"):
            files = sorted((Path(tmp) / "val" / cls).iterdir())
            x = torch.stack([torch.from_numpy(load_image(f, 3, (224, 224), "bicubic")) for f in files])
            with torch.no_grad():
                p = torch.softmax(model((x.float() / 255 - mean) / std), 1)
            dog, cat = p[:, list(DOGS)].sum(1), p[:, list(CATS)].sum(1)
            right = (dog > cat) if cls == "dog" else (cat > dog)
            top5 = p.topk(5, 1).indices
            in_top5 = [any(int(i) in (DOGS if cls == "dog" else CATS) for i in row) for row in top5]
            rows[cls] = {
                "images": len(files),
                "zero_shot_right": round(float(right.float().mean()), 4),
                "own_kind_in_top5": round(sum(in_top5) / len(files), 4),
                "mass_on_cats_and_dogs": round(float((dog + cat).mean()), 4),
            }
    both = sum(r["zero_shot_right"] * r["images"] for r in rows.values()) / sum(r["images"] for r in rows.values())
    result = {
        "benchmark": "bench_photos_zeroshot",
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "seconds": round(time.perf_counter() - t0, 1),
        "per_class": rows,
        "zero_shot_accuracy": round(both, 4),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_photos_zeroshot.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Zero-shot: the cat/dog stand-in under the pretrained ImageNet head",
        "",
        "EfficientNet-Lite0 (the package's weights, no training), 224 px bicubic, on the stand-in's 75 + 75 "
        "validation images (CIFAR-10 test images upscaled from 32 px, as `bench_photos.py` builds them).",
        "",
        "| class | images | right (dog vs cat mass) | its own kind in the top-5 | mass on cat + dog classes |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {c} | {r['images']} | {100 * r['zero_shot_right']:.1f} % | {100 * r['own_kind_in_top5']:.1f} % | "
            f"{100 * r['mass_on_cats_and_dogs']:.1f} % |"
            for c, r in rows.items()
        ),
        "",
        f"Zero-shot accuracy on both: {100 * both:.1f} %. Command: `.venv/bin/python benchmarks/bench_photos_zeroshot.py`.",
        "",
    ]
    (RESULTS / "bench_photos_zeroshot.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
