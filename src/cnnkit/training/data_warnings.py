"""The one-line warnings `train` gives about its data: strong class imbalance (with the ratio
and the option that corrects it) and files left out (their count and skipped.csv)."""

from __future__ import annotations

from pathlib import Path

from cnnkit.config import Config
from cnnkit.data.types import Dataset

STRONG_IMBALANCE = 10.0  # largest / smallest training class at or above this is worth a line


def data_warnings(cfg: Config, data: Dataset, run_dir: Path) -> list[str]:
    """At most one line per concern, in the order a user should read them."""
    from cnnkit.data.balance import imbalance_ratio

    lines = []
    if not data.multi_label and not data.train.masks:  # masks: pixel counts, not images
        counts = data.train.class_counts(data.num_classes)
        ratio = imbalance_ratio(counts)
        if ratio >= STRONG_IMBALANCE and cfg.data.balance == "none" and cfg.optim.class_weights == "none":
            big, small = (
                max(range(len(counts)), key=counts.__getitem__),
                min((i for i in range(len(counts)) if counts[i]), key=counts.__getitem__),
            )
            names = data.class_names
            lines.append(
                f"strong class imbalance: {ratio:.0f}x more training images in {names[big]!r} ({counts[big]}) than in {names[small]!r} ({counts[small]}), "
                f"so accuracy mostly reflects the large classes; --balance sampler (or --set optim.class_weights=balanced) corrects for it"
            )
    if data.skipped:
        n = len(data.skipped)
        from cnnkit._text import printable

        first = data.skipped[0]
        lines.append(
            f"{n} file{'s' if n != 1 else ''} could not be read and {'were' if n != 1 else 'was'} left out ({printable(first.path)}: {printable(first.reason)}"
            f"{'' if n == 1 else ', ...'}); the list and the reasons are in {run_dir / 'skipped.csv'}"
        )
    return lines
