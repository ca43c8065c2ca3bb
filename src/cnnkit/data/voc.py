"""PASCAL VOC XML boxes: read into detection records (data/detection.py assembles them), and written.

Two layouts, one per dataset (data/detection_layout.py tells which):
    DIR/Annotations/ID.xml, DIR/JPEGImages/ID.jpg, DIR/ImageSets/Main/{train,val,test}.txt  (the VOC devkit's)
    DIR/{train,val,test}/Annotations/*.xml + DIR/{train,val,test}/JPEGImages/ (or images/)  (one folder per split)
Each XML names its image (<filename>, else the XML's stem with any image extension) and holds <object>s
with <name> and <bndbox> xmin, ymin, xmax, ymax in the devkit's convention: 1-based, inclusive pixel
indices, so the box's pixel edges are (xmin - 1, ymin - 1, xmax, ymax). `difficult` objects are KEPT as
ordinary boxes (VOC's own evaluation ignores them; here they are trained on and scored like the rest).
Classes: DIR/classes.txt (one name a line) when present, else the sorted names found in all splits.
An unreadable XML, a listed ID without its XML, an object without a name or numeric bndbox, or (with
classes.txt) of an unknown class is skipped and named; an XML without objects is a negative, kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

from cnnkit.data.detection import DetectionSplit, RawImage, RawObject, Skips, png_bytes
from cnnkit.data.images import IMAGE_EXTENSIONS
from cnnkit.errors import DataError

SPLITS = ("train", "val", "test")
IMAGE_DIRS = ("JPEGImages", "images")
NamedBox = tuple[str, tuple[float, float, float, float], str]  # where, pixel-edge xyxy, class name


def parse_xml(xml: Path, skip: Skips) -> tuple[str | None, list[NamedBox]] | None:
    """(the <filename>, its objects) of one annotation file; None (skipped) when it is not readable XML."""
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as e:
        skip(str(xml), f"not readable VOC XML ({e})")
        return None
    objects: list[NamedBox] = []
    for i, obj in enumerate(root.iter("object")):
        where = f"{xml}: object {i}"
        name = (obj.findtext("name") or "").strip()
        try:
            x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{k}") or "") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            skip(where, "<bndbox> must hold numeric xmin, ymin, xmax, ymax")
            continue
        if not name:
            skip(where, "object without a <name>")
            continue
        objects.append((where, (x1 - 1, y1 - 1, x2, y2), name))
    return (root.findtext("filename") or "").strip() or None, objects


def _image_file(folder: Path, filename: str | None, stem: str) -> Path:
    if filename and (folder / filename).is_file():
        return folder / filename
    found = [p for p in sorted(folder.glob(f"{stem}.*")) if p.suffix.lower() in IMAGE_EXTENSIONS]
    return found[0] if found else folder / (filename or f"{stem}.jpg")  # a missing file: skipped when read


def _split_ids(root: Path) -> dict[str, list[tuple[Path, Path]]]:
    """Per split, its (xml, image folder) pairs, for either layout."""
    out: dict[str, list[tuple[Path, Path]]] = {}
    if (root / "Annotations").is_dir():
        sets, images = root / "ImageSets" / "Main", root / "JPEGImages"
        for split in SPLITS:
            if (sets / f"{split}.txt").is_file():
                ids = [ln.split()[0] for ln in (sets / f"{split}.txt").read_text().splitlines() if ln.strip()]
                out[split] = [(root / "Annotations" / f"{i}.xml", images) for i in ids]
        return out
    for split in SPLITS:
        folder = root / split
        if (folder / "Annotations").is_dir():
            images = next((folder / d for d in IMAGE_DIRS if (folder / d).is_dir()), folder / IMAGE_DIRS[0])
            out[split] = [(x, images) for x in sorted((folder / "Annotations").glob("*.xml"))]
    return out


def read_voc(root: str | Path, skip: Skips) -> tuple[dict[str, list[RawImage]], list[str]]:
    """Per split, its records; and the class names (classes.txt, else every name found, sorted)."""
    root = Path(root)
    parsed: dict[str, list[tuple[Path, str | None, list[NamedBox], Path]]] = {}
    for split, pairs in _split_ids(root).items():
        parsed[split] = []
        for xml, images in pairs:
            if not xml.is_file():
                skip(str(xml), "listed in ImageSets but the annotation file is missing")
            elif (got := parse_xml(xml, skip)) is not None:
                parsed[split].append((xml, got[0], got[1], images))
    names_file = root / "classes.txt"
    if names_file.is_file():
        classes = [ln.strip() for ln in names_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    else:
        classes = sorted({o[2] for items in parsed.values() for it in items for o in it[2]})
    if not classes:
        raise DataError(f"{root}: no object in any VOC annotation and no classes.txt; nothing names the classes")
    index = {c: i for i, c in enumerate(classes)}
    splits: dict[str, list[RawImage]] = {}
    for split, items in parsed.items():
        splits[split] = []
        for xml, filename, objects, images in items:
            file = _image_file(images, filename, xml.stem)
            rec = RawImage(file, file.name)
            for where, box, name in objects:
                if name in index:
                    rec.objects.append(RawObject(where, box, index[name]))
                else:
                    skip(where, f"class {name!r} is not in {names_file}")
            splits[split].append(rec)
    return splits, classes


def voc_xml(name: str, width: int, height: int, depth: int, boxes: list[list[float]], names: list[str]) -> str:
    """One annotation file's text (devkit convention: 1-based inclusive xmin, ymin; xmax, ymax)."""
    objs = "".join(
        f"<object><name>{escape(n)}</name><difficult>0</difficult><bndbox><xmin>{x1 + 1:g}</xmin><ymin>{y1 + 1:g}</ymin>"
        f"<xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox></object>\n"
        for (x1, y1, x2, y2), n in zip(boxes, names, strict=True)
    )
    size = f"<size><width>{width}</width><height>{height}</height><depth>{depth}</depth></size>"
    return f"<annotation><filename>{escape(name)}</filename>{size}\n{objs}</annotation>\n"


def write_voc(split: DetectionSplit, classes: list[str], folder: str | Path) -> Path:
    """`split` as folder/Annotations/NNNNN.xml + folder/JPEGImages/NNNNN.png (each file atomically)."""
    from cnnkit.io_safety import write_file

    folder = Path(folder)
    c, h, w = split.images.shape[1:]
    for i in range(len(split)):
        arr = split.images[i].permute(1, 2, 0).numpy()
        write_file(folder / "JPEGImages" / f"{i:05d}.png", png_bytes(arr[:, :, 0] if c == 1 else arr))
        names = [classes[k] for k in split.labels[i].tolist()]
        text = voc_xml(f"{i:05d}.png", int(w), int(h), int(c), split.boxes[i].tolist(), names)
        write_file(folder / "Annotations" / f"{i:05d}.xml", text)
    return folder
