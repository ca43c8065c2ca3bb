"""plots/gan_curves.png: both losses and D(x) / D(G(z)) per epoch (matplotlib, headless, atomic)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnkit.rundir import atomic_write

    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [r["loss_d"] for r in rows], "o-", label="discriminator")
    a.plot(epochs, [r["loss_g"] for r in rows], "o-", label="generator")
    a.set(xlabel="epoch", ylabel="loss (BCE)", title="losses")
    a.legend()
    b.plot(epochs, [r["d_real"] for r in rows], "o-", label="D(x), real")
    b.plot(epochs, [r["d_fake"] for r in rows], "o-", label="D(G(z)), generated")
    b.axhline(0.5, color="grey", lw=0.8, ls="--")
    b.set(xlabel="epoch", ylabel="probability real", ylim=(0, 1), title="discriminator outputs")
    b.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
