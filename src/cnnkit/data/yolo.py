"""YOLO txt boxes: read into detection records (data/detection.py assembles them), and written.

Two layouts, one per dataset (data/detection_layout.py tells which), split names train, val (or valid), test:
    DIR/images/{train,val,test}/*.png + DIR/labels/{train,val,test}/*.txt    (Ultralytics')
    DIR/{train,val,test}/images/*.png + DIR/{train,val,test}/labels/*.txt    (one folder per split)
A label file has the image's stem and one object a line: `class cx cy w h`, the centre and size as
fractions of the image's width and height (scaled to pixels once the image is read). An image without a
label file, or with an empty one, is a negative, kept. Classes: `names` in DIR/data.yaml (a list, or a
{index: name} mapping), else DIR/classes.txt, else one DIR/*.names file (one name a line).
A line that is not 5 numbers, or whose class is not an index of the names, is skipped and named (file:line).
"""

from __future__ import annotations

from pathlib import Path

from cnnkit.data.detection import DetectionSplit, RawImage, RawObject, Skips, png_bytes
from cnnkit.errors import DataError

SPLITS = {"train": ("train",), "val": ("val", "valid"), "test": ("test",)}
CLASS_FILES = "data.yaml (names: [...]), classes.txt or one *.names file"


def yolo_classes(root: Path) -> list[str]:
    """The class names of a YOLO dataset (see the module docstring for where they are looked for)."""
    if (root / "data.yaml").is_file():
        import yaml

        try:
            names = (yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8")) or {}).get("names")
        except (yaml.YAMLError, AttributeError) as e:
            raise DataError(f"{root / 'data.yaml'}: not a YAML mapping with `names` ({e})") from e
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            return [str(names[i]) for i in range(len(names))]
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        raise DataError(f"{root / 'data.yaml'}: `names` must be a list of class names or a {{0: name, ...}} mapping")
    listed = [root / "classes.txt"] if (root / "classes.txt").is_file() else sorted(root.glob("*.names"))
    if len(listed) != 1:
        raise DataError(f"{root}: no single class-name file; a YOLO dataset names its classes in {CLASS_FILES}")
    return [ln.strip() for ln in listed[0].read_text(encoding="utf-8").splitlines() if ln.strip()]


def parse_labels(path: Path, num_classes: int, skip: Skips) -> list[RawObject]:
    """The objects of one label file (a missing file: none, a negative)."""
    if not path.is_file():
        return []
    objects = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}:{n}"
        try:
            if len(fields) != 5:
                raise ValueError(f"{len(fields)} fields")
            k, (cx, cy, w, h) = int(fields[0]), (float(v) for v in fields[1:])
        except ValueError as e:
            skip(where, f"expected `class cx cy w h` (an integer and 4 numbers), got {line.strip()!r} ({e})")
            continue
        if not 0 <= k < num_classes:
            skip(where, f"class {k} is not an index of the {num_classes} class names")
            continue
        objects.append(RawObject(where, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), k, normalised=True))
    return objects


def _folders(root: Path, split: str) -> tuple[Path, Path] | None:
    for name in SPLITS[split]:
        for images, labels in (
            (root / "images" / name, root / "labels" / name),
            (root / name / "images", root / name / "labels"),
        ):
            if images.is_dir():
                return images, labels
    return None


def read_yolo(root: str | Path, skip: Skips) -> tuple[dict[str, list[RawImage]], list[str]]:
    """Per split found, its records (every image file, sorted); and the class names."""
    from cnnkit.data.images import is_image_file

    root = Path(root)
    classes = yolo_classes(root)
    splits: dict[str, list[RawImage]] = {}
    for split in SPLITS:
        if (found := _folders(root, split)) is None:
            continue
        images, labels = found
        splits[split] = [
            RawImage(f, f.name, parse_labels(labels / f"{f.stem}.txt", len(classes), skip))
            for f in sorted(images.iterdir())
            if is_image_file(f)
        ]
    return splits, classes


def write_yolo(split: DetectionSplit, folder: str | Path) -> Path:
    """`split` as folder/images/NNNNN.png + folder/labels/NNNNN.txt (each file atomically); the class
    names go in the dataset's data.yaml (`write_yolo_names`)."""
    from cnnkit.io_safety import write_file

    folder = Path(folder)
    c, h, w = split.images.shape[1:]
    for i in range(len(split)):
        arr = split.images[i].permute(1, 2, 0).numpy()
        write_file(folder / "images" / f"{i:05d}.png", png_bytes(arr[:, :, 0] if c == 1 else arr))
        lines = "".join(
            f"{k} {(x1 + x2) / 2 / w:.10g} {(y1 + y2) / 2 / h:.10g} {(x2 - x1) / w:.10g} {(y2 - y1) / h:.10g}\n"
            for (x1, y1, x2, y2), k in zip(split.boxes[i].tolist(), split.labels[i].tolist(), strict=True)
        )
        write_file(folder / "labels" / f"{i:05d}.txt", lines)
    return folder


def write_yolo_names(root: str | Path, classes: list[str]) -> Path:
    import yaml

    from cnnkit.io_safety import write_file

    return write_file(Path(root) / "data.yaml", yaml.safe_dump({"names": list(classes)}, sort_keys=False))
