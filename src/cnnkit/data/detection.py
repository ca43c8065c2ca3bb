"""Detection data: images with boxes, in memory, and its one file format (COCO JSON).

In memory (`DetectionSplit`): images (N, C, H, W) uint8 of one size, and per image a `(K, 4)` float32
box tensor in (x1, y1, x2, y2) pixel edges with its `(K,)` int64 class indices (0-based; the detector
adds its own background). An image without objects has K = 0 and is kept as a negative.

On disk (`read_coco` / `write_coco`), one folder per split:
    DIR/train/annotations.json   COCO: images [{id, file_name, width, height}],
    DIR/train/images/*.png       annotations [{id, image_id, category_id, bbox: [x, y, w, h]}],
    DIR/val/..., DIR/test/...    categories [{id, name}] (ids any integers; sorted by id -> classes)
Boxes that reach outside their image are clipped; an annotation whose box is degenerate after
clipping (width or height under 1 pixel), whose category or image id is unknown, or whose bbox is
malformed is skipped and named (`SkippedFile`: the json file, the annotation id and why), as is an
image file that is missing, unreadable or of another size than the split's first image.

The other formats (data/voc.py, data/yolo.py) read into the same records (`RawImage` with its
`RawObject`s); `assemble` is the one place that decodes the images and turns records into a split
(scaling, clipping, skipping), for all three. data/detection_layout.py tells the format from a folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.data.types import SkippedFile
from cnnkit.errors import DataError

ANNOTATIONS = "annotations.json"


@dataclass
class DetectionSplit:
    images: torch.Tensor  # (N, C, H, W) uint8
    boxes: list[torch.Tensor]  # N x (K, 4) float32 xyxy
    labels: list[torch.Tensor]  # N x (K,) int64
    names: list[str] = field(default_factory=list)  # image file names, for reports

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: list[int]) -> DetectionSplit:
        names = [self.names[i] for i in index] if self.names else []
        return DetectionSplit(
            self.images[index], [self.boxes[i] for i in index], [self.labels[i] for i in index], names
        )


@dataclass
class DetectionData:
    name: str
    class_names: list[str]
    train: DetectionSplit
    val: DetectionSplit
    test: DetectionSplit | None
    source: str = ""
    skipped: list[SkippedFile] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]


def clip_xyxy(box: tuple[float, ...], width: int, height: int) -> tuple[float, ...] | None:
    """(x1, y1, x2, y2) clipped to the image; None when under a pixel wide or high after clipping."""
    x1, y1 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
    x2, y2 = min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)
    return (x1, y1, x2, y2) if x2 - x1 >= 1 and y2 - y1 >= 1 else None


def clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[float, ...] | None:
    """COCO [x, y, w, h] -> (x1, y1, x2, y2) clipped to the image; None when under a pixel wide or high."""
    return clip_xyxy((x, y, x + w, y + h), width, height)


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3) uint8 as PNG bytes (for io_safety.write_file: atomic)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class RawObject:
    """One annotated object as a reader found it: `where` names it (file and annotation id / line / index)."""

    where: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 pixel edges; fractions of the side when `normalised`
    label: int  # 0-based class index
    normalised: bool = False  # YOLO: scaled by the image's width and height once it is read


@dataclass
class RawImage:
    file: Path
    name: str  # as listed (for reports)
    objects: list[RawObject] = field(default_factory=list)  # none: a negative, kept


class Skips:
    """Skipped items (`SkippedFile`: what and why), or under `strict` a DataError at the first one."""

    def __init__(self, strict: bool = False) -> None:
        self.strict, self.items = strict, list[SkippedFile]()

    def __call__(self, where: str, why: str) -> None:
        if self.strict:
            raise DataError(f"{where}: {why} (drop --strict to skip it and list it in skipped.csv)")
        self.items.append(SkippedFile(where, why))


def _decode(file: Path, channels: int | None, size: int | None) -> tuple[torch.Tensor, float, float]:
    """(C, H, W) uint8 of one image file; with `size`, letterboxed into size x size; and the x, y scale.

    Letterboxing keeps the aspect ratio: the longer side becomes `size`, and the rest is padded with
    zeros at the bottom and right, so a box only scales (no offset). torchvision's detector transform
    does the same with the images `cnnkit predict` gives it (their longer side to min_size = max_size,
    padded at the bottom and right), so objects have the same shape in training and in prediction."""
    from cnnkit.data.images import open_image, pil_to_array

    pil = open_image(file)
    channels = channels or (1 if pil.mode in ("1", "L", "I;16", "I", "F") else 3)
    t = torch.from_numpy(pil_to_array(pil, channels))  # (C, H, W) uint8
    height, width = t.shape[1:]
    if size is None or (height, width) == (size, size):
        return t, 1.0, 1.0
    scale = size / max(height, width)
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = torch.nn.functional.interpolate(t[None].float(), size=(h, w), mode="bilinear", antialias=True)
    out = torch.zeros((t.shape[0], size, size), dtype=torch.uint8)
    out[:, :h, :w] = resized[0].round().clamp(0, 255).to(torch.uint8)
    return out, w / width, h / height


def assemble(
    records: list[RawImage], where: Path, skip: Skips, channels: int | None = None, size: int | None = None
) -> DetectionSplit:
    """The one conversion of every format's records into a DetectionSplit: images decoded to `channels`
    (None: 1 when the first image is grayscale, else 3) and, with `size` (data.image_size), letterboxed
    into size x size with their boxes (aspect ratio kept, padded at the bottom and right); boxes scaled
    (normalised ones), clipped to the image, degenerate ones skipped and named; without `size`, images
    of another size than the first are skipped."""
    from cnnkit.data.images import ImageError

    images: list[torch.Tensor] = []
    names: list[str] = []
    boxes: list[list[tuple[float, ...]]] = []
    labels: list[list[int]] = []
    for rec in records:
        try:
            t, sx, sy = _decode(rec.file, channels, size)
        except (ImageError, OSError) as e:
            skip(str(rec.file), f"image not read: {e}")
            continue
        channels = t.shape[0]
        if images and t.shape != images[0].shape:
            why = f"size {tuple(t.shape)} differs from the split's {tuple(images[0].shape)}"
            skip(
                str(rec.file),
                why + "; --image-size N fits every image (and its boxes) into N x N, its aspect ratio kept (padded)",
            )
            continue
        height, width = t.shape[1:]
        kept: list[tuple[float, ...]] = []
        classes: list[int] = []
        for obj in rec.objects:
            fx, fy = (width, height) if obj.normalised else (sx, sy)
            b = (obj.box[0] * fx, obj.box[1] * fy, obj.box[2] * fx, obj.box[3] * fy)
            if (box := clip_xyxy(b, width, height)) is None:
                shown = [round(v, 3) for v in b]
                skip(
                    obj.where, f"degenerate box {shown} (under 1 pixel wide or high inside the {width}x{height} image)"
                )
                continue
            kept.append(box)
            classes.append(obj.label)
        images.append(t)
        names.append(rec.name)
        boxes.append(kept)
        labels.append(classes)
    if not images:
        raise DataError(f"{where}: no readable image ({len(skip.items)} skipped); check the image files it names")
    return DetectionSplit(
        torch.stack(images),
        [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
        [torch.tensor(v, dtype=torch.int64) for v in labels],
        names,
    )


def _bbox(ann: dict[str, Any]) -> list[float] | None:
    b = ann.get("bbox")
    if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, (int, float)) for v in b):
        return None
    return [float(v) for v in b]


def read_coco(
    folder: str | Path, *, channels: int | None = None, strict: bool = False, size: int | None = None
) -> tuple[DetectionSplit, list[str], list[SkippedFile]]:
    """(split, class names, skipped) from `folder/annotations.json` and the images it names, decoded to
    `channels` (None: 1 when the first image is grayscale, else 3)."""
    folder = Path(folder)
    path = folder / ANNOTATIONS
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"{path}: not found; a detection split folder holds {ANNOTATIONS} (COCO) and its images") from e
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); fix the file or regenerate it") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise DataError(f"{path}: the key {key!r} must be a list (COCO layout: images, annotations, categories)")
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(cats)}
    classes = [str(c.get("name", c["id"])) for c in cats]
    skip = Skips(strict)
    records = {
        im["id"]: RawImage(folder / str(im.get("file_name", "")), str(im.get("file_name", ""))) for im in doc["images"]
    }
    for ann in doc["annotations"]:
        where = f"{path}: annotation {ann.get('id', '?')}"
        b = _bbox(ann)
        if b is None:
            skip(where, f"bbox must be [x, y, w, h] numbers, got {ann.get('bbox')!r}")
        elif ann.get("image_id") not in records:
            skip(where, f"image_id {ann.get('image_id')!r} is not in images")
        elif ann.get("category_id") not in index:
            skip(where, f"category_id {ann.get('category_id')!r} is not in categories")
        else:
            box = (b[0], b[1], b[0] + b[2], b[1] + b[3])
            records[ann["image_id"]].objects.append(RawObject(where, box, index[ann["category_id"]]))
    split = assemble(list(records.values()), path, skip, channels, size)
    return split, classes, skip.items


def write_coco(split: DetectionSplit, classes: list[str], folder: str | Path) -> Path:
    """Write `split` as `folder/annotations.json` + `folder/images/NNNNN.png` (each file atomically)."""
    from cnnkit.io_safety import write_file

    folder = Path(folder)
    doc: dict[str, list[dict[str, Any]]] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": c} for i, c in enumerate(classes)],
    }
    for i in range(len(split)):
        name = f"images/{i:05d}.png"
        arr = split.images[i].permute(1, 2, 0).numpy()
        write_file(folder / name, png_bytes(arr[:, :, 0] if arr.shape[2] == 1 else arr))
        h, w = split.images.shape[2:]
        doc["images"].append({"id": i, "file_name": name, "width": int(w), "height": int(h)})
        for box, label in zip(split.boxes[i].tolist(), split.labels[i].tolist(), strict=True):
            x1, y1, x2, y2 = box
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]),
                    "image_id": i,
                    "category_id": int(label),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    return write_file(folder / ANNOTATIONS, json.dumps(doc))
