"""`cnnkit predict --save-images DIR`: each image with its top classes drawn on it."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageDraw

from cnnkit.data.images import open_image
from cnnkit.rundir import atomic_write

MIN_SIDE = 160  # small images (28 px digits) are enlarged so the text is readable beside them
LINE = 13  # pixels per text line (PIL's default bitmap font)


def annotate(img: Image.Image, lines: list[str]) -> Image.Image:
    """`img` (RGB, enlarged to at least MIN_SIDE px wide, nearest-neighbour) above a white band with `lines`."""
    img = img.convert("RGB")
    if img.width < MIN_SIDE:
        scale = -(-MIN_SIDE // img.width)
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    draw_probe = ImageDraw.Draw(img)
    width = max([img.width] + [int(draw_probe.textlength(t)) + 8 for t in lines])
    out = Image.new("RGB", (width, img.height + LINE * len(lines) + 6), "white")
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(lines):
        draw.text((4, img.height + 3 + i * LINE), text, fill=(0, 0, 0) if i else (170, 0, 0))
    return out


def caption(prediction) -> list[str]:
    """The text lines: top-k classes (multi-label: every label above the threshold) with probabilities."""
    chosen = prediction.labels if prediction.labels is not None else prediction.top_k
    return [f"{label} {prob:.1%}" for label, prob in chosen] or ["(no label above the threshold)"]


def save_annotated(predictions, out_dir: str | Path) -> list[Path]:
    """One PNG per prediction in `out_dir` (created), named after the source file (a -2, -3...
    suffix when two sources share a name), each written atomically. Returns the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, taken = [], set()
    for p in predictions:
        stem = Path(p.source).stem
        name, i = f"{stem}.png", 1
        while name in taken:
            i += 1
            name = f"{stem}-{i}.png"
        taken.add(name)
        image = annotate(open_image(p.source), caption(p))
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        atomic_write(out / name, _writer(buf.getvalue()))
        written.append(out / name)
    return written


def _writer(data: bytes) -> Callable[[BinaryIO], object]:
    """A callback for atomic_write that writes `data` (bound now, not when the loop has moved on)."""
    return lambda f: f.write(data)
