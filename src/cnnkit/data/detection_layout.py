"""A detection dataset folder: which of the three formats it is (one per dataset), read into DetectionData.

    coco  DIR/{train,val,test}/annotations.json + the images it names        (data/detection.py)
    voc   DIR/Annotations/*.xml + DIR/JPEGImages/ + DIR/ImageSets/Main/{train,val,test}.txt,
          or DIR/{train,val,test}/Annotations/*.xml + JPEGImages/            (data/voc.py)
    yolo  DIR/images/{train,val,test}/ + DIR/labels/{train,val,test}/,
          or DIR/{train,val,test}/images/ + labels/ (val may be `valid`)   (data/yolo.py)
Train and val splits are required, test is optional. A folder matching none of the layouts, or more
than one, is a DataError naming the folder and the layouts. All three go through detection.assemble:
the same boxes, clipping, skipped.csv entries (or errors under --strict) and negatives.
"""

from __future__ import annotations

from pathlib import Path

from cnnkit.data.detection import DetectionData, DetectionSplit, RawImage, Skips, assemble, read_coco
from cnnkit.errors import DataError

LAYOUTS = {
    "coco": "DIR/train/annotations.json (COCO) and DIR/val/annotations.json, each beside its images",
    "voc": "DIR/Annotations/*.xml + DIR/JPEGImages/ + DIR/ImageSets/Main/{train,val}.txt, "
    "or DIR/train/Annotations/*.xml + DIR/train/JPEGImages/ (and val/)",
    "yolo": "DIR/images/{train,val}/ + DIR/labels/{train,val}/, or DIR/train/images/ + DIR/train/labels/ (and val/), "
    "with class names in data.yaml, classes.txt or *.names",
}


def _expected() -> str:
    return "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items())


def detect_layout(root: str | Path) -> str:
    """'coco', 'voc' or 'yolo' from the folder's layout; a DataError when none or several match."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; a detection dataset is a folder in one of these layouts: {_expected()}")
    split_dirs = [root, *(root / s for s in ("train", "val", "valid", "test"))]
    found = {
        "coco": any((root / s / "annotations.json").is_file() for s in ("train", "val", "test")),
        "voc": any((d / "Annotations").is_dir() for d in split_dirs),
        "yolo": any((d / "labels").is_dir() for d in split_dirs),
    }
    hits = [k for k, v in found.items() if v]
    if len(hits) > 1:
        raise DataError(
            f"{root}: ambiguous detection layout, it looks like {' and '.join(hits)}; keep one format per dataset "
            f"(move the other annotations away). Layouts: {_expected()}"
        )
    if not hits:
        raise DataError(f"{root}: no known detection layout; expected one of: {_expected()}")
    return hits[0]


def read_detection_folder(
    root: str | Path, *, channels: int | None = None, strict: bool = False, size: int | None = None
) -> DetectionData:
    """The dataset in `root` (any of the three layouts), its splits decoded to one channel count and,
    with `size` (data.image_size), every image resized to size x size with its boxes."""
    root = Path(root)
    kind = detect_layout(root)
    skip = Skips(strict)
    splits: dict[str, DetectionSplit] = {}
    if kind == "coco":
        classes: list[str] = []
        for name in ("train", "val", "test"):
            if (root / name / "annotations.json").is_file() or name != "test":
                split, classes_here, skipped = read_coco(root / name, channels=channels, strict=strict, size=size)
                classes = classes or classes_here
                skip.items += skipped
                splits[name] = split
                channels = channels or split.images.shape[1]
    else:
        from cnnkit.data.voc import read_voc
        from cnnkit.data.yolo import read_yolo

        records, classes = (read_voc if kind == "voc" else read_yolo)(root, skip)
        for name in ("train", "val", "test"):
            if name in records or name != "test":
                splits[name] = _assemble(root, kind, name, records.get(name), skip, channels, size)
                channels = channels or splits[name].images.shape[1]
    return DetectionData(
        root.name,
        classes,
        splits["train"],
        splits["val"],
        splits.get("test"),
        source=f"{root} ({kind})",
        skipped=skip.items,
    )


def _assemble(
    root: Path,
    kind: str,
    name: str,
    records: list[RawImage] | None,
    skip: Skips,
    channels: int | None,
    size: int | None,
) -> DetectionSplit:
    if not records:
        raise DataError(f"{root}: no {name} images in the {kind} layout ({LAYOUTS[kind]}); train and val are required")
    return assemble(records, root / name, skip, channels, size)
