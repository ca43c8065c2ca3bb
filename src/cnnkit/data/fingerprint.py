"""A dataset's fingerprint, and what changed between two of them (what `--resume` checks).

Image files (folders, manifests): one row per file used, (class, path, path in class, stat) as
int64: the class index (-1 for multi-label rows), a 64-bit blake2b of the file's path relative
to the dataset, the same without its class folder (so a renamed class folder keeps its files'
identities), and the hash of its size and modification time. Only `os.stat` per file, no
reading: 32 bytes per file in the checkpoint. Built-in datasets (decoded tensors, no file
paths): per split, the number of images and a blake2b of the images and labels.

`changes(before, now)` lists, in words, the classes added, removed, renamed or reordered and
the files added, removed, changed or moved to another class.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
import torch

from cnnkit.data.types import Dataset, Split

VERSION = 1
SPLITS = ("train", "val", "test")


def fingerprint(data: Dataset) -> dict[str, Any]:
    """The fingerprint of `data` (plain values and one int64 tensor: it saves with weights_only)."""
    splits = {s: getattr(data, s) for s in SPLITS if getattr(data, s) is not None}
    fp: dict[str, Any] = {"version": VERSION, "dataset": data.name, "class_names": list(data.class_names)}
    if all(split.paths is not None for split in splits.values()):
        rows = _file_rows(splits, data.class_names, data.source)
        fp.update(kind="files", files=rows)
        body = rows.numpy().tobytes()
    else:
        fp.update(kind="tensors", splits={s: [len(split), _tensor_digest(split)] for s, split in splits.items()})
        body = json.dumps(fp["splits"], sort_keys=True).encode()
    fp["digest"] = hashlib.blake2b(json.dumps(fp["class_names"]).encode() + body, digest_size=16).hexdigest()
    return fp


def _base(source: str, paths: list[str]) -> str:
    if source and os.path.isdir(source):
        return source
    if source and os.path.isfile(source):  # a manifest: paths are relative to its folder
        return os.path.dirname(source) or "."
    return os.path.commonpath([os.path.abspath(p) for p in paths]) if paths else ""


def _file_rows(splits: dict[str, Split], class_names: list[str], source: str) -> torch.Tensor:
    rows: list[tuple[int, int, int, int]] = []  # (class, path, path in class, stat)
    all_paths = [p for split in splits.values() for p in split.paths]  # type: ignore[union-attr]  # the caller checked every split has paths
    base = _base(source, all_paths)
    prefix, abs_base = os.path.join(base, ""), os.path.abspath(base)
    for split in splits.values():
        single = split.labels.ndim == 1
        labels: list[Any]
        if split.labels.ndim == 3:  # masks: a digest of each mask (part of its image's state, like multi-label rows)
            labels = [(_digest64(r.tobytes()),) for r in split.labels.numpy()]
        elif single:
            labels = split.labels.tolist()
        else:
            labels = [tuple(np.flatnonzero(r > 0.5).tolist()) for r in split.labels.numpy()]
        for path, label in zip(split.paths, labels):  # type: ignore[arg-type]  # as above: paths present
            path = str(path)
            rel = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(os.path.abspath(path), abs_base)
            parts = rel.replace(os.sep, "/").split("/")
            ident = _hash64("/".join(parts))
            if single and class_names[label] in parts[:-1]:
                parts.remove(
                    class_names[label]
                )  # without the class folder: a renamed class keeps its files' identities
            in_class = _hash64("/".join(parts))
            try:
                st = os.stat(path)
                stat = _mix(st.st_size, st.st_mtime_ns)
            except OSError:
                stat = -1
            if not single:  # multi-label: the labels are part of the file's state
                stat = _mix(stat, _hash64(",".join(map(str, label))))
            rows.append((label if single else -1, ident, in_class, stat))
    if not rows:
        return torch.zeros(0, 4, dtype=torch.int64)
    unique: torch.Tensor = torch.unique(
        torch.tensor(rows, dtype=torch.int64), dim=0
    )  # sorted, duplicates (oversampling) once
    return unique


def _mix(a: int, b: int) -> int:
    """Two integers as one signed 64-bit value (the same in every process and Python version, unlike hash())."""
    x = (a * 0x9E3779B97F4A7C15 ^ b) & 0xFFFF_FFFF_FFFF_FFFF
    return x - (1 << 64) if x >= 1 << 63 else x


def _hash64(text: str) -> int:
    return _digest64(text.encode())


def _digest64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def _tensor_digest(split: Split) -> str:
    h = hashlib.blake2b(digest_size=16)
    images = split.images
    for i in range(0, images.shape[0], 4096):
        h.update(np.ascontiguousarray(images[i : i + 4096].numpy()).tobytes())
    h.update(split.labels.numpy().tobytes())
    return h.hexdigest()


def _class_content(rows: torch.Tensor, c: int) -> bytes:
    own = rows[rows[:, 0] == c][:, 2:]
    return own[torch.argsort(own[:, 0], stable=True)].numpy().tobytes()  # (path in class, stat), in one order


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words (empty when they match)."""
    if before.get("digest") == now.get("digest"):
        return []
    out: list[str] = []
    b_names, n_names = list(before["class_names"]), list(now["class_names"])
    removed = [c for c in b_names if c not in n_names]
    added = [c for c in n_names if c not in b_names]
    files = before.get("kind") == now.get("kind") == "files"
    renamed: dict[str, str] = {}
    if files:
        for r in removed:
            content = _class_content(before["files"], b_names.index(r))
            match = next(
                (
                    a
                    for a in added
                    if a not in renamed.values()
                    and content
                    and _class_content(now["files"], n_names.index(a)) == content
                ),
                None,
            )
            if match is not None:
                renamed[r] = match
    if renamed:
        out.append("classes renamed: " + ", ".join(f"{r!r} -> {a!r}" for r, a in renamed.items()))
    if [c for c in removed if c not in renamed]:
        out.append(f"classes removed: {_names([c for c in removed if c not in renamed])}")
    if [c for c in added if c not in renamed.values()]:
        out.append(f"classes added: {_names([c for c in added if c not in renamed.values()])}")
    if b_names != n_names:
        out.append(f"the labels now mean [{_names(n_names)}] instead of [{_names(b_names)}]")
    if files:
        out.extend(_file_changes(before, now, renamed))
    elif before.get("kind") == now.get("kind") == "tensors":
        for s in sorted(set(before["splits"]) | set(now["splits"])):
            b, n = before["splits"].get(s), now["splits"].get(s)
            if b != n:
                out.append(f"the {s} split's images differ ({b[0] if b else 0} before, {n[0] if n else 0} now)")
    else:
        out.append(
            f"the dataset was {before.get('dataset')!r} ({before.get('kind')}), now {now.get('dataset')!r} ({now.get('kind')})"
        )
    return out or ["the dataset's contents differ"]


def _file_changes(before: dict[str, Any], now: dict[str, Any], renamed: dict[str, str]) -> list[str]:
    b_names, n_names = before["class_names"], now["class_names"]

    def keyed(
        rows: torch.Tensor, names: list[str], skip: set[str]
    ) -> dict[tuple[str | None, int], int]:  # renamed classes: the same files
        return {(names[c] if c >= 0 else None, i): s for c, i, _, s in rows.tolist() if c < 0 or names[c] not in skip}

    b, n = keyed(before["files"], b_names, set(renamed)), keyed(now["files"], n_names, set(renamed.values()))
    gone, new = b.keys() - n.keys(), n.keys() - b.keys()
    moved = len({i for _, i in gone} & {i for _, i in new})
    changed = sum(1 for k in b.keys() & n.keys() if b[k] != n[k])
    parts = [
        f"{len(new) - moved} added" if len(new) > moved else "",
        f"{len(gone) - moved} removed" if len(gone) > moved else "",
        f"{changed} changed (size{', labels' if any(k[0] is None for k in n) else ''} or modification time)"
        if changed
        else "",
        f"{moved} moved to another class" if moved else "",
    ]
    parts = [p for p in parts if p]
    return [f"files: {', '.join(parts)}"] if parts else []
