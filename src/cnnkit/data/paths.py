"""Where datasets live: --data-root, else $CNNKIT_DATA, else a per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def data_root(root: str | None) -> Path:
    if root:
        return Path(root).expanduser()
    if os.environ.get("CNNKIT_DATA"):
        return Path(os.environ["CNNKIT_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "cnnkit" / "datasets"
