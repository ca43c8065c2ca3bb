"""Neural style transfer (`cnnkit stylize`): seconds for 256 px and 300 steps with the pretrained
EfficientNet-Lite0, and the losses at the start and the end, for L-BFGS and Adam.

The images exist offline: the content is the photo of Grace Hopper that matplotlib ships
(mpl-data/sample_data/grace_hopper.jpg, 512x600); the style is drawn here, a seeded Kandinsky-like
picture of coloured circles, triangles and strokes on cream paper (`kandinsky`). Default weights
(content 1, style 1e4, tv 1), init from the content. Seconds on a shared, busy machine are
contaminated by the other processes: the load average is recorded before and after each run.
`--example PATH` also writes a small JPEG: content | style | L-BFGS result.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_stylize.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_stylize.py --size 64 --steps 5 --out /tmp/b  # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_results
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
PALETTE = [(200, 30, 40), (20, 60, 160), (250, 190, 20), (20, 20, 20), (30, 140, 80), (230, 110, 20)]


def kandinsky(size: int = 256, seed: int = 0) -> Image.Image:
    """Forty seeded shapes: outlined circles, straight strokes and triangles in six strong colours."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (242, 230, 200))
    d = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = (int(v) for v in rng.integers(-40, size, 2))
        r, colour, kind = int(rng.integers(8, 60)), PALETTE[rng.integers(len(PALETTE))], rng.integers(3)
        if kind == 0:
            d.ellipse([x0, y0, x0 + r, y0 + r], fill=colour, outline=(0, 0, 0), width=2)
        elif kind == 1:
            end = (x0 + int(rng.integers(-size, size)), y0 + int(rng.integers(-size, size)))
            d.line([(x0, y0), end], fill=colour, width=int(rng.integers(2, 8)))
        else:
            d.polygon([(x0, y0), (x0 + r, y0 + r // 2), (x0 + r // 3, y0 + r)], fill=colour)
    return img


def content_photo() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def run(optimizer: str, size: int, steps: int, style: Path, out: Path) -> dict:
    from cnnkit.tasks.style.api import StyleSettings, stylize

    before = [round(v, 2) for v in os.getloadavg()]
    rec = stylize(content_photo(), style, out, StyleSettings(size=size, steps=steps, optimizer=optimizer), quiet=True)
    return {
        "optimizer": optimizer,
        "seconds": rec["seconds"],
        "seconds_per_step": round(rec["seconds"] / steps, 3),
        "losses_start": rec["losses_start"],
        "losses_end": rec["losses_end"],
        "load_before": before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
    }


def markdown(r: dict) -> str:
    rows = [
        f"| {x['optimizer']} | {x['seconds']:.1f} | {x['seconds_per_step']:.2f} | "
        f"{x['losses_start']['style']:.4g} -> {x['losses_end']['style']:.4g} "
        f"({x['losses_start']['style'] / max(x['losses_end']['style'], 1e-12):.0f}x) | "
        f"{x['losses_start']['content']:.4g} -> {x['losses_end']['content']:.4g} | "
        f"{x['losses_start']['total']:.4g} -> {x['losses_end']['total']:.4g} | {x['load_before']} -> {x['load_after']} |"
        for x in r["runs"]
    ]
    return (
        f"# bench_stylize: style transfer with EfficientNet-Lite0 (CPU)\n\n`{r['command']}`\n\n"
        f"Content: matplotlib's grace_hopper.jpg (512x600) at {r['working_size']} px; style: a seeded Kandinsky-like "
        f"drawing (benchmarks/bench_stylize.py `kandinsky`); {r['steps']} steps, weights content 1, style 1e4, tv 1, "
        f"init from the content; torch threads {r['threads']}.\n\n"
        "| optimizer | seconds | s/step | style loss | content loss | total | load average before -> after |\n"
        "|---|---:|---:|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"{r['machine']['model']} ({r['machine']['cores']} cores, {r['machine']['simd']}). The machine was shared "
        "with other jobs (see the load averages): the seconds are contaminated and only indicative; the losses are not.\n"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", default=str(RESULTS / "bench_stylize"), help="results path without suffix")
    ap.add_argument("--example", help="also write content | style | L-BFGS result as a small JPEG here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.optim.Adam(
        [torch.zeros(1, requires_grad=True)]
    )  # torch imports torch._dynamo on the first optimiser: not timed
    from cnnkit.tasks.style.images import working_size

    with tempfile.TemporaryDirectory() as tmp:
        style = Path(tmp) / "kandinsky.png"
        kandinsky(args.size).save(style)
        runs = [run(o, args.size, args.steps, style, Path(tmp) / f"{o}.png") for o in ("lbfgs", "adam")]
        if args.example:
            write_example(Path(tmp) / "lbfgs.png", style, Path(args.example))
    h, w = working_size(600, 512, args.size)
    results = {
        "command": "PYTHONPATH=src python benchmarks/bench_stylize.py " + " ".join(argv or sys.argv[1:]),
        "working_size": f"{w}x{h}",
        "steps": args.steps,
        "threads": args.threads,
        "runs": runs,
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
    }
    write_results(results, args.out, markdown)
    return 0


def write_example(result: Path, style: Path, path: Path, height: int = 200) -> None:
    tiles = []
    for p in (content_photo(), style, result):
        im = Image.open(p).convert("RGB")
        tiles.append(im.resize((round(im.width * height / im.height), height), Image.Resampling.LANCZOS))
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), height), "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 8
    sheet.save(path, quality=85)


if __name__ == "__main__":
    raise SystemExit(main())
