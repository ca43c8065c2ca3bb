"""CSV / JSON manifests: one row per image, `path,label[,split]`.

- CSV with a header row naming at least `path` and `label` (an optional `split` column
  holds train / val / test; `valid` and `validation` mean val).
- JSON: a list of objects `{"path": ..., "label": ..., "split": ...}` (or `{"images": [...]}`),
  where `label` may be a list for multi-label rows; JSON Lines (`.jsonl`): one object a line.

Paths are relative to the manifest's folder (absolute paths are kept). With
`data.label_delimiter` set (e.g. ";"), each label cell is split on it and the labels become
multi-hot rows (N, K): several classes per image. Without a split column, val (and no test)
is held out of the rows by a seeded stratified split. Large manifests stream like folders
(data.stream, data.cache_max_gb: see `folder.py`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.types import Dataset, SkippedFile, Split
from cnnkit.errors import DataError

MANIFEST_SUFFIXES = (".csv", ".json", ".jsonl")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}


def read_manifest(path: Path, label_delimiter: str | None = None) -> list[tuple[str, list[str], str | None]]:
    """Rows (path as written, label names, split or None), checked; raises DataError naming the row."""
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from e
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "path" not in fields or "label" not in fields:
            raise DataError(
                f"{path}: the first row must be a header naming the columns path,label[,split]; found {reader.fieldnames}"
            )
        reader.fieldnames = fields
        records = [(i + 2, r) for i, r in enumerate(reader)]
    elif suffix in (".json", ".jsonl"):
        try:
            if suffix == ".jsonl":
                records = [(i + 1, json.loads(line)) for i, line in enumerate(text.splitlines()) if line.strip()]
            else:
                obj = json.loads(text)
                items = obj.get("images") if isinstance(obj, dict) else obj
                if not isinstance(items, list):
                    raise DataError(
                        f"{path}: expected a JSON list of {{'path': ..., 'label': ...}} objects (or {{'images': [...]}})"
                    )
                records = [(i + 1, r) for i, r in enumerate(items)]
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e})") from e
    else:
        raise DataError(f"{path}: unknown manifest type {suffix!r}; use {', '.join(MANIFEST_SUFFIXES)}")

    rows = []
    where = "row" if suffix != ".json" else "item"
    for n, r in records:
        if not isinstance(r, dict) or not r.get("path"):
            raise DataError(f"{path}: {where} {n} has no path")
        raw = r.get("label")
        if isinstance(raw, list):
            labels = [str(x).strip() for x in raw]
        elif raw is None:
            labels = []
        elif label_delimiter:
            labels = [x.strip() for x in str(raw).split(label_delimiter)]
        else:
            labels = [str(raw).strip()]
        labels = [x for x in labels if x]
        if not labels and not label_delimiter:
            raise DataError(f"{path}: {where} {n} ({r['path']}) has no label")
        if len(labels) > 1 and not label_delimiter and not isinstance(raw, list):
            raise DataError(f"{path}: {where} {n}: several labels but data.label_delimiter is not set")
        split = r.get("split")
        if split not in (None, ""):
            key = str(split).strip().lower()
            if key not in SPLIT_ALIASES:
                raise DataError(f"{path}: {where} {n}: split {split!r} is not train, val or test")
            split = SPLIT_ALIASES[key]
        else:
            split = None
        rows.append((str(r["path"]).strip(), labels, split))
    if not rows:
        raise DataError(f"{path}: the manifest lists no images")
    return rows


@register_dataset(
    "manifest",
    description="your images listed in a CSV/JSON manifest: path,label[,split] (multi-label with data.label_delimiter)",
    num_classes=None,
    size="any; resized to data.image_size (default 64)",
    location="--data FILE.csv|.json|.jsonl",
)
def build_manifest(cfg: DataConfig, seed: int) -> Dataset:
    from cnnkit.data.folder import DEFAULT_SIZE, decide_streaming, decode_labelled, finish

    if not cfg.path:
        raise DataError("dataset 'manifest' needs a file: --data FILE.csv (rows path,label[,split])")
    manifest = Path(cfg.path).expanduser()
    rows = read_manifest(manifest, cfg.label_delimiter)
    multi = bool(cfg.label_delimiter) or any(len(labels) != 1 for _, labels, _ in rows)
    class_names = sorted({c for _, labels, _ in rows for c in labels})
    index = {c: i for i, c in enumerate(class_names)}
    channels = cfg.channels or 3
    size = (cfg.image_size or DEFAULT_SIZE,) * 2
    has_split = any(s is not None for _, _, s in rows)
    if has_split and any(s is None for _, _, s in rows):
        raise DataError(f"{manifest}: some rows name a split and some do not; give every row a split, or none")
    if has_split and not any(s == "train" for _, _, s in rows):
        raise DataError(f"{manifest}: no row is in the train split")

    def target(labels: list[str]) -> int | torch.Tensor:
        if not multi:
            return index[labels[0]]
        row = torch.zeros(len(class_names))
        row[[index[c] for c in labels]] = 1.0
        return row

    stream = decide_streaming(cfg, len(rows), channels, size, manifest)
    skipped: list[SkippedFile] = []
    splits: dict[str, Split] = {}
    for split in ("train", "val", "test") if has_split else ("train",):
        chosen = [(p, labels) for p, labels, s in rows if not has_split or s == split]
        if not chosen:
            continue
        files = [p if Path(p).is_absolute() else manifest.parent / p for p, _ in chosen]
        files = [Path(f) for f in files]
        images, targets, paths = decode_labelled(
            files, [target(lab) for _, lab in chosen], channels, size, cfg, skipped, f"{manifest}#{split}", stream
        )
        if multi:
            y = torch.stack(targets) if targets else torch.zeros(0, len(class_names))
        else:
            y = torch.tensor(targets, dtype=torch.int64)
        splits[split] = Split(images, y, paths)  # type: ignore[arg-type]  # a FileImages stands in for the tensor (stream.py)
    if "train" not in splits or len(splits["train"]) == 0:
        raise DataError(f"{manifest}: no readable training image")
    return finish(manifest.stem, class_names, splits, cfg, seed, str(manifest), skipped)
