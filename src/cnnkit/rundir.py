"""The run folder: the single artefact of a run, never overwritten."""

from __future__ import annotations

import re
import time
from pathlib import Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def create_run_dir(runs_dir: str | Path, name: str | None, *, dataset: str, model: str) -> Path:
    """Create and return a new run folder.

    With no `name`, the name is `<dataset>-<model>-<YYYYmmdd-HHMMSS>`. A name that is
    taken gets a `-2`, `-3`... suffix: an existing run is never overwritten.
    """
    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    model_part = "spec" if "(" in model else _slug(model)  # a layer spec would make an unreadable name
    base = _slug(name) if name else f"{_slug(dataset)}-{model_part}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1, 10_000):
        candidate = runs / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        (candidate / "plots").mkdir()
        return candidate
    raise RuntimeError(f"could not find a free run name for {base!r} in {runs}")
