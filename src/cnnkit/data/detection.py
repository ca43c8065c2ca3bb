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


def clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[float, ...] | None:
    """COCO [x, y, w, h] -> (x1, y1, x2, y2) clipped to the image; None when under a pixel wide or high."""
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    return (x1, y1, x2, y2) if x2 - x1 >= 1 and y2 - y1 >= 1 else None


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3) uint8 as PNG bytes (for io_safety.write_file: atomic)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def _bbox(ann: dict[str, Any]) -> list[float] | None:
    b = ann.get("bbox")
    if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, (int, float)) for v in b):
        return None
    return [float(v) for v in b]


def read_coco(
    folder: str | Path, *, channels: int | None = None, strict: bool = False
) -> tuple[DetectionSplit, list[str], list[SkippedFile]]:
    """(split, class names, skipped) from `folder/annotations.json` and the images it names, decoded to
    `channels` (None: 1 when the first image is grayscale, else 3)."""
    from cnnkit.data.images import ImageError, open_image, pil_to_array

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
    skipped: list[SkippedFile] = []

    def skip(where: str, why: str) -> None:
        if strict:
            raise DataError(f"{where}: {why} (drop --strict to skip it and list it in skipped.csv)")
        skipped.append(SkippedFile(where, why))

    images: list[torch.Tensor] = []
    names: list[str] = []
    sizes: dict[Any, int] = {}
    for im in doc["images"]:
        file = folder / str(im.get("file_name", ""))
        try:
            pil = open_image(file)
            channels = channels or (1 if pil.mode in ("1", "L", "I;16", "I", "F") else 3)
            t = torch.from_numpy(pil_to_array(pil, channels))  # (C, H, W) uint8
        except (ImageError, OSError) as e:
            skip(str(file), f"image not read: {e}")
            continue
        if images and t.shape != images[0].shape:
            skip(str(file), f"size {tuple(t.shape)} differs from the split's {tuple(images[0].shape)}")
            continue
        sizes[im["id"]] = len(images)
        images.append(t)
        names.append(str(im["file_name"]))
    if not images:
        raise DataError(f"{path}: no readable image ({len(skipped)} skipped); check the file names under {folder}")
    height, width = images[0].shape[1:]
    boxes: list[list[tuple[float, ...]]] = [[] for _ in images]
    labels: list[list[int]] = [[] for _ in images]
    for ann in doc["annotations"]:
        where = f"{path}: annotation {ann.get('id', '?')}"
        b = _bbox(ann)
        if b is None:
            skip(where, f"bbox must be [x, y, w, h] numbers, got {ann.get('bbox')!r}")
        elif ann.get("image_id") not in sizes:
            skip(where, f"image_id {ann.get('image_id')!r} is not a read image")
        elif ann.get("category_id") not in index:
            skip(where, f"category_id {ann.get('category_id')!r} is not in categories")
        elif (box := clip_box(b[0], b[1], b[2], b[3], width, height)) is None:
            skip(where, f"degenerate box {b} (under 1 pixel wide or high inside the {width}x{height} image)")
        else:
            boxes[sizes[ann["image_id"]]].append(box)
            labels[sizes[ann["image_id"]]].append(index[ann["category_id"]])
    split = DetectionSplit(
        torch.stack(images),
        [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes],
        [torch.tensor(v, dtype=torch.int64) for v in labels],
        names,
    )
    return split, classes, skipped


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
