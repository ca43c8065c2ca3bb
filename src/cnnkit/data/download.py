"""Fetch dataset files: SHA-256 checked, resumable (a `.part` file is continued), atomic.

Tests point the URLs at local `file://` copies; nothing here is special-cased for that.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from cnnkit.errors import DataError

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`, continuing from its current size where possible."""
    offset = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "cnnkit"})
    if offset and not url.startswith("file:"):
        req.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        status = getattr(resp, "status", None)
        if offset and url.startswith("file:"):
            resp.read(offset)  # local files: skip what is already there
        elif offset and status != 206:
            offset = 0  # the server ignored the range: start again
        with open(part, "ab" if offset else "wb") as out:
            shutil.copyfileobj(resp, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())


def download(urls: list[str] | str, dest: str | os.PathLike[str], sha256: str, *, timeout: float = 60.0) -> Path:
    """Download `dest` from the first mirror that works, verify its SHA-256, rename into place.

    A partial download is kept as `dest.part` and continued next time. A checksum mismatch
    deletes the partial file and tries the next mirror. Returns `dest`.
    """
    dest = Path(dest)
    if dest.exists() and sha256_file(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in [urls] if isinstance(urls, str) else urls:
        try:
            _fetch(url, part, timeout)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            errors.append(f"{url}: {e}")
            continue
        digest = sha256_file(part)
        if digest != sha256:
            part.unlink(missing_ok=True)
            errors.append(f"{url}: SHA-256 mismatch (got {digest}, expected {sha256})")
            continue
        os.replace(part, dest)
        return dest
    raise DataError(
        f"could not download {dest.name} into {dest.parent}:\n  "
        + "\n  ".join(errors)
        + "\nPlace the file there yourself (or set --data-root / CNNKIT_DATA to a folder holding it)."
    )
