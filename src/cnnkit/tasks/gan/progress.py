"""The animated progression: every epoch's sample grid (samples/epoch_NNN.png, the same fixed noise) as the
frames of samples/progress.gif (Pillow), rewritten atomically after each epoch; the last frame is held longer.
A long run shows at most MAX_FRAMES epochs, evenly spread, first and last included (report.html embeds it)."""

from __future__ import annotations

import io
from pathlib import Path

FRAME_MS = 400  # each epoch's frame
LAST_MS = 2000  # the last one, before the loop starts again
MAX_FRAMES = 40


def write_progress(samples: Path, name: str = "progress.gif") -> Path | None:
    """samples/progress.gif from samples/epoch_*.png in epoch order; None when there is no grid yet."""
    from PIL import Image

    from cnnkit.rundir import atomic_write

    grids = sorted(samples.glob("epoch_*.png"))
    if not grids:
        return None
    if len(grids) > MAX_FRAMES:
        step = (len(grids) - 1) / (MAX_FRAMES - 1)
        grids = [grids[round(i * step)] for i in range(MAX_FRAMES)]
    frames = []
    for path in grids:
        with Image.open(path) as im:
            frames.append(im.convert("L") if im.mode in ("L", "LA", "I;16") else im.convert("RGB"))
    buf = io.BytesIO()
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_MS]
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=False
    )
    out = samples / name
    atomic_write(out, lambda f: f.write(buf.getvalue()))
    return out
