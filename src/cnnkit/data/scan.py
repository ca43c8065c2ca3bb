"""The folder scan: which image files a tree holds, listed without opening one, and cached.

`scan_tree(root, cache_dir)` walks `root` with `os.scandir` (names and entry types only: no
image is opened or decoded), skipping hidden entries. For every visible folder it records its
modification time, its visible sub-folders and its image files (by extension), plus what it
skipped: folders it could not read, or that loop back through a symlink (`skipped`, reported
like unreadable images), and the number of files without an image extension (`ignored`).

With a cache folder the scan is saved as `<cache_dir>/scans/<hash of the root>.json`
(written under a temporary name and renamed) and reused while every recorded folder keeps its
modification time: adding, removing or renaming a file or folder changes the mtime of the
folder holding it, so a later run `stat`s the folders (1,001 for ImageNet) instead of listing
a million files. Each folder's mtime is read before it is listed, so a change during the scan
invalidates the entry; a scan that saw a folder modified less than `RACY_SECONDS` before it
began is not saved (a file added in the same timestamp tick would not change the mtime). Nor
is a scan that skipped folders, so a later run reads them again and reports them again if
they are still unreadable (a permission fix changes no mtime). A cache file that cannot be read, is not
valid JSON, or is from another version is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit.data.images import IMAGE_EXTENSIONS
from cnnkit.data.types import SkippedFile

log = logging.getLogger("cnnkit")

SCAN_VERSION = 1
RACY_SECONDS = 2.0


@dataclass
class ScanDir:
    mtime_ns: int
    subdirs: list[str]  # visible sub-folder names, sorted
    files: list[str]  # image file names, sorted


@dataclass
class TreeScan:
    """A scanned tree: `dirs` maps each folder's path relative to `root` ("" for the root,
    "/"-separated) to its entry."""

    root: Path
    dirs: dict[str, ScanDir]
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: int = 0  # files without an image extension
    from_cache: bool = False
    seconds: float = 0.0

    def subdirs(self, rel: str = "") -> list[str]:
        entry = self.dirs.get(rel)
        return list(entry.subdirs) if entry is not None else []

    def image_files(self, rel: str = "") -> list[str]:
        """Paths of the image files under folder `rel`, recursively, in the order `sorted` gives
        their `Path`s (name by name, folder by folder), as strings (cheaper by the million)."""
        out: list[str] = []
        top = "" if os.fspath(self.root) == "." else os.fspath(self.root)  # as Path(".") / "a" is "a"
        self._collect(rel, os.path.join(top, rel) if rel else top, out)
        return out

    def _collect(self, rel: str, path: str, out: list[str]) -> None:
        entry = self.dirs.get(rel)
        if entry is None:
            return
        prefix = (
            os.path.join(path, "") if path else ""
        )  # "<path>/": joining by concatenation is 3x faster by the million
        if not entry.subdirs:
            out.extend([prefix + name for name in entry.files])
            return
        subdirs = set(entry.subdirs)
        for name in sorted(entry.files + entry.subdirs):
            if name in subdirs:
                self._collect(_join(rel, name), prefix + name, out)
            else:
                out.append(prefix + name)

    def num_files(self) -> int:
        return sum(len(e.files) for e in self.dirs.values())


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def walk(root: Path) -> TreeScan:
    """Scan `root` now (no cache)."""
    t0 = time.perf_counter()
    scan = TreeScan(Path(root), {})
    stack: list[tuple[str, frozenset[tuple[int, int]]]] = [
        ("", frozenset())
    ]  # (folder, (device, inode) of the folders above it)
    while stack:
        rel, above = stack.pop()
        path = os.path.join(root, rel) if rel else os.fspath(root)
        try:
            st = os.stat(path)  # before listing: a change during the scan then shows as a new mtime
            if (st.st_dev, st.st_ino) in above:
                scan.skipped.append(SkippedFile(path, "symlink loop (a link to a folder above it)"))
                continue
            with os.scandir(path) as it:
                entries = list(it)
        except OSError as e:
            log.warning("skipping unreadable folder %s (%s)", path, e.strerror or e)
            scan.skipped.append(SkippedFile(path, f"unreadable folder ({e.strerror or e})"))
            continue
        subdirs, files = [], []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(entry.name)
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                files.append(entry.name)
            else:
                scan.ignored += 1
        subdirs.sort()
        files.sort()
        scan.dirs[rel] = ScanDir(st.st_mtime_ns, subdirs, files)
        inside = above | {(st.st_dev, st.st_ino)}
        stack.extend((_join(rel, s), inside) for s in reversed(subdirs))
    scan.seconds = time.perf_counter() - t0
    return scan


def cache_file(root: Path, cache_dir: Path) -> Path:
    key = hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:16]
    return cache_dir / "scans" / f"{key}.json"


def scan_tree(root: Path, cache_dir: Path | None = None) -> TreeScan:
    """The scan of `root`: from the cache while the tree is unchanged, else walked (and saved)."""
    t0 = time.perf_counter()
    root = Path(root)
    file = cache_file(root, cache_dir) if cache_dir is not None else None
    if file is not None:
        cached = _load(file, root)
        if cached is not None:
            cached.seconds = time.perf_counter() - t0
            return cached
    started_ns = time.time_ns()
    scan = walk(root)
    if scan.ignored:
        log.info("%s: %d files without an image extension ignored", root, scan.ignored)
    if file is not None:
        racy = any(d.mtime_ns > started_ns - RACY_SECONDS * 1e9 for d in scan.dirs.values())
        if not racy and not scan.skipped:
            _save(scan, file)
    return scan


def _save(scan: TreeScan, file: Path) -> None:
    data = {
        "version": SCAN_VERSION,
        "root": os.path.abspath(scan.root),
        "ignored": scan.ignored,
        "dirs": {rel: [d.mtime_ns, d.subdirs, d.files] for rel, d in scan.dirs.items()},
    }
    tmp = file.with_name(f"{file.name}.tmp-{os.getpid()}")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, file)
    except OSError as e:
        log.warning("could not save the folder scan to %s (%s); the next run scans again", file, e.strerror or e)
    finally:
        tmp.unlink(missing_ok=True)


def _load(file: Path, root: Path) -> TreeScan | None:
    """The cached scan, if it is readable, of this version and root, and no folder changed."""
    try:
        data = json.loads(file.read_text())
        if data["version"] != SCAN_VERSION or data["root"] != os.path.abspath(root):
            return None
        dirs = {rel: ScanDir(int(m), list(sub), list(files)) for rel, (m, sub, files) in data["dirs"].items()}
        ignored = int(data["ignored"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.info("ignoring the unreadable folder scan cache %s (%s)", file, e)
        return None
    if "" not in dirs:
        return None
    for rel, d in dirs.items():
        try:
            if os.stat(root / rel if rel else root).st_mtime_ns != d.mtime_ns:
                return None
        except OSError:
            return None
    return TreeScan(root, dirs, [], ignored, from_cache=True)
