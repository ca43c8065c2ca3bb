"""Decode once, on disk: image files decoded into a memory-mapped uint8 cache.

An entry is keyed by every file's path, size and modification time plus the decode
settings (channels, size, interpolation, loader version), so any change to the files or the settings
makes a new key and the entry is rebuilt; the stale entry for the same source is removed.
An entry is two files in the cache folder: `<source>-<key>.u8` (raw (N, C, H, W) uint8
rows of the readable files) and `<source>-<key>.json` (which files those rows are, and
which files were skipped and why). Both are written under temporary names and renamed
into place, the JSON last, so a crash never leaves an entry that looks complete.

Later runs only `stat` the files (no decoding, no PIL) and map the array. An entry verifies
itself first: the JSON is checked against its schema (types, lengths, `kept` indices strictly
increasing and in range, the skipped files being exactly the files not kept) and the array's
xxh3-128 checksum, computed when it was written, against its bytes. For 50,000 32x32x3 images
(154 MB) the checks cost ~0.22 s per load, 0.15 s of it the checksum (blake2b: ~1 s), measured
at load average ~7 on 2 shared cores. An entry that fails is rebuilt, with one warning naming
the file and what was wrong.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xxhash

from cnnkit.data.images import DEFAULT_INTERPOLATION, ImageError, load_image
from cnnkit.data.types import SkippedFile
from cnnkit.errors import DataError

FilePaths = Sequence[str | Path]  # image files, as paths or strings

log = logging.getLogger("cnnkit")

CACHE_VERSION = 2  # bump when decoding or the entry format changes, so old entries are not reused (2: checksums)


def default_cache_dir(cache_dir: str | None = None) -> Path:
    """data.cache_dir, else $CNNKIT_CACHE, else <XDG cache>/cnnkit/decoded."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("CNNKIT_CACHE"):
        return Path(os.environ["CNNKIT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnkit" / "decoded"


@dataclass
class FileStat:
    path: str
    size: int
    mtime_ns: int


def stat_files(paths: FilePaths) -> list[FileStat]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
            out.append(FileStat(str(p), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(FileStat(str(p), -1, 0))
    return out


def cache_key(files: list[FileStat], channels: int, size: tuple[int, int], interpolation: str | None = None) -> str:
    """The decoded pixels' identity: the files and every setting that changes them (a bicubic
    decode is never reused for a bilinear one)."""
    settings = {"v": CACHE_VERSION, "channels": channels, "size": list(size)}
    if (interpolation or DEFAULT_INTERPOLATION) != DEFAULT_INTERPOLATION:  # bilinear keys stay as they were
        settings["interpolation"] = interpolation
    h = hashlib.sha256(json.dumps(settings).encode())
    for f in files:
        h.update(f"\n{f.path}\t{f.size}\t{f.mtime_ns}".encode())
    return h.hexdigest()[:24]


def source_id(source: str, channels: int, size: tuple[int, int]) -> str:
    return hashlib.sha256(f"{os.path.abspath(source)}|{channels}|{size[0]}x{size[1]}".encode()).hexdigest()[:16]


@dataclass
class Decoded:
    """The readable files decoded: `images[i]` is file `paths[kept[i]]`."""

    images: torch.Tensor  # (n_ok, C, H, W) uint8
    kept: list[int]
    skipped: list[SkippedFile] = field(default_factory=list)
    cache_hit: bool = False
    cache_file: Path | None = None
    seconds: float = 0.0


def _decode_into(
    out: np.ndarray,
    paths: FilePaths,
    channels: int,
    size: tuple[int, int],
    strict: bool,
    workers: int,
    interpolation: str | None = None,
) -> tuple[list[int], list[SkippedFile]]:
    """Decode every file into `out` rows (compacted); returns (kept indices, skipped)."""
    kept: list[int] = []
    skipped: list[SkippedFile] = []

    def one(i: int) -> tuple[int, np.ndarray | None, ImageError | None]:
        try:
            return i, load_image(paths[i], channels, size, interpolation), None
        except ImageError as e:
            return i, None, e

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # PIL decodes outside the GIL
        for i, arr, err in pool.map(one, range(len(paths)), chunksize=64):
            if err is not None:
                if strict:
                    raise DataError(f"{err} (remove the file, or train without --strict to skip bad files)") from err
                log.debug("skipping %s", err)  # train says it once: the count and skipped.csv
                skipped.append(SkippedFile(str(paths[i]), str(err).removeprefix(f"{paths[i]}: ")))
                continue
            out[len(kept)] = arr
            kept.append(i)
    return kept, skipped


def decode_files(
    paths: FilePaths,
    channels: int,
    size: tuple[int, int],
    *,
    strict: bool = False,
    cache_dir: Path | None = None,
    source: str = "",
    workers: int | None = None,
    interpolation: str | None = None,
) -> Decoded:
    """Decode `paths` once into uint8 (N, C, H, W) through the one image loader.

    With `cache_dir`, the result is memory-mapped from (or written to) the cache, keyed by
    the files' paths, sizes and mtimes and the settings. Unreadable files are skipped with a
    warning naming each (also on a cache hit), or raise DataError when `strict`.
    """
    t0 = time.perf_counter()
    workers = workers or min(8, os.cpu_count() or 1)
    c, (h, w) = channels, size
    if cache_dir is None:
        buf = np.empty((len(paths), c, h, w), dtype=np.uint8)
        kept, skipped = _decode_into(buf, paths, channels, size, strict, workers, interpolation)
        return Decoded(torch.from_numpy(buf[: len(kept)]), kept, skipped, seconds=time.perf_counter() - t0)

    stats = stat_files(paths)
    sid = source_id(source or (str(Path(paths[0]).parent) if paths else ""), channels, size)
    key = cache_key(stats, channels, size, interpolation)
    data_file, meta_file = cache_dir / f"{sid}-{key}.u8", cache_dir / f"{sid}-{key}.json"
    hit = _load(data_file, meta_file, paths, (c, h, w))
    if hit is not None:
        return _cache_hit(hit, strict, data_file, t0)
    if not _writable(cache_dir):
        return decode_files(
            paths, channels, size, strict=strict, cache_dir=None, workers=workers, interpolation=interpolation
        )
    kept, skipped, digest = _decode_to_file(data_file, paths, channels, size, strict, workers, interpolation)
    meta = {
        "version": CACHE_VERSION,
        "source": os.path.abspath(source) if source else "",
        "shape": [len(kept), c, h, w],
        "num_files": len(paths),
        "kept": kept,
        "skipped": [[s.path, s.reason] for s in skipped],
        "xxh3_128": digest,
    }
    tmp_meta = meta_file.with_name(f"{meta_file.name}.tmp-{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_file)
    _prune(cache_dir, sid, keep=key)
    log.info("decoded %d images into the cache %s in %.1fs", len(kept), data_file, time.perf_counter() - t0)
    return Decoded(
        _map(data_file, len(kept), (c, h, w)),
        kept,
        skipped,
        cache_hit=False,
        cache_file=data_file,
        seconds=time.perf_counter() - t0,
    )


def _cache_hit(
    hit: tuple[list[int], list[SkippedFile], torch.Tensor], strict: bool, data_file: Path, t0: float
) -> Decoded:
    """A cache entry as the result (its skipped files an error when `strict`)."""
    kept, skipped, images = hit
    if strict and skipped:
        raise DataError(
            f"{skipped[0].path}: {skipped[0].reason} (remove the file, or train without --strict to skip bad files)"
        )
    for s in skipped:
        log.debug("skipping %s: %s", s.path, s.reason)
    return Decoded(images, kept, skipped, cache_hit=True, cache_file=data_file, seconds=time.perf_counter() - t0)


def _writable(cache_dir: Path) -> bool:
    """Whether files can be created in `cache_dir` (made if missing); a warning when not."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        probe = cache_dir / f".probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        log.warning(
            "decode cache folder %s is not writable (%s); decoding in memory (set data.cache_dir)", cache_dir, e
        )
        return False
    return True


def _decode_to_file(
    data_file: Path,
    paths: FilePaths,
    channels: int,
    size: tuple[int, int],
    strict: bool,
    workers: int,
    interpolation: str | None = None,
) -> tuple[list[int], list[SkippedFile], str]:
    """Decode into a temporary memory map, cut it to the kept rows and move it to `data_file`;
    returns (kept, skipped, the file's checksum)."""
    c, (h, w) = channels, size
    tmp = data_file.with_name(f"{data_file.name}.tmp-{os.getpid()}")
    try:
        out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(max(len(paths), 1), c, h, w))
        kept, skipped = _decode_into(out, paths, channels, size, strict, workers, interpolation)
        out.flush()
        del out
        os.truncate(tmp, len(kept) * c * h * w)
        digest = checksum(tmp)
        os.replace(tmp, data_file)
    finally:
        tmp.unlink(missing_ok=True)
    return kept, skipped, digest


def checksum(file: Path, chunk: int = 1 << 24) -> str:
    """xxh3-128 of a file's bytes (hex)."""
    h = xxhash.xxh3_128()
    with open(file, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _map(data_file: Path, n: int, chw: tuple[int, int, int]) -> torch.Tensor:
    # copy-on-write map: pages are read lazily from the file, writes never reach it
    arr = np.memmap(data_file, dtype=np.uint8, mode="c", shape=(n, *chw)) if n else np.zeros((0, *chw), np.uint8)
    return torch.from_numpy(arr)


class _Invalid(Exception):
    """What is wrong with a cache entry."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_meta(meta: Any, paths: FilePaths, chw: tuple[int, int, int]) -> None:
    """Raise _Invalid unless `meta` is an entry of this version for `paths` decoded at `chw`."""
    if not isinstance(meta, dict):
        raise _Invalid("not a JSON object")
    if meta.get("version") != CACHE_VERSION:
        raise _Invalid(f"version {meta.get('version')!r}, expected {CACHE_VERSION}")
    shape, kept, skipped = meta.get("shape"), meta.get("kept"), meta.get("skipped")
    if (
        not isinstance(shape, list)
        or len(shape) != 4
        or not all(_is_int(v) and v >= 0 for v in shape)
        or tuple(shape[1:]) != chw
    ):
        raise _Invalid(f"shape {str(shape)[:60]}, expected [N, {', '.join(map(str, chw))}]")
    if meta.get("num_files") != len(paths):
        raise _Invalid(f"num_files {str(meta.get('num_files'))[:20]}, expected {len(paths)}")
    if not isinstance(kept, list) or len(kept) != shape[0] or not all(_is_int(i) for i in kept):
        raise _Invalid(f"'kept' must list {shape[0]} file indices")
    if any(not 0 <= i < len(paths) for i in kept) or any(a >= b for a, b in itertools.pairwise(kept)):
        raise _Invalid(f"'kept' indices must increase within 0..{len(paths) - 1}")
    if not isinstance(skipped, list) or not all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in skipped
    ):
        raise _Invalid("'skipped' must list [path, reason] pairs")
    kept_set = set(kept)
    if [e[0] for e in skipped] != [str(p) for i, p in enumerate(paths) if i not in kept_set]:
        raise _Invalid("'skipped' must name exactly the files not kept")
    if not isinstance(meta.get("xxh3_128"), str):
        raise _Invalid("no checksum")


def _load(
    data_file: Path, meta_file: Path, paths: FilePaths, chw: tuple[int, int, int]
) -> tuple[list[int], list[SkippedFile], torch.Tensor] | None:
    """The entry's (kept, skipped, images), or None: when there is none, or (with one warning naming
    the file) when it fails its check, so that it is rebuilt."""
    if not meta_file.is_file() or not data_file.is_file():
        return None
    bad = meta_file
    try:
        meta = json.loads(meta_file.read_text())
        _check_meta(meta, paths, chw)
        bad = data_file
        n = meta["shape"][0]
        size = data_file.stat().st_size
        if size != n * chw[0] * chw[1] * chw[2]:
            raise _Invalid(f"{size} bytes, expected {n * chw[0] * chw[1] * chw[2]}")
        if checksum(data_file) != meta["xxh3_128"]:
            raise _Invalid("its bytes do not match the checksum written with it")
        images = _map(data_file, n, chw)
    except (OSError, ValueError, _Invalid) as e:
        log.warning("decode cache file %s failed its check (%s); rebuilding the entry", bad, e)
        return None
    return meta["kept"], [SkippedFile(p, r) for p, r in meta["skipped"]], images


def _prune(cache_dir: Path, sid: str, keep: str) -> None:
    """Remove stale entries of this source, and entries whose source folder no longer exists."""
    for meta_file in cache_dir.glob("*.json"):
        stem = meta_file.stem
        stale = stem.startswith(f"{sid}-") and stem != f"{sid}-{keep}"
        if not stale:
            try:
                src = json.loads(meta_file.read_text()).get("source")
                stale = bool(src) and not os.path.exists(src.split("#", 1)[0])
            except (OSError, ValueError):
                stale = False
        if stale:
            meta_file.unlink(missing_ok=True)
            meta_file.with_suffix(".u8").unlink(missing_ok=True)
