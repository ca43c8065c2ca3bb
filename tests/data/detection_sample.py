"""One tiny hand-written detection sample (3 grayscale 40x30 images, classes cat and dog), written by hand
in each of the three formats: train = a.png (2 boxes) + b.png (no object, a negative), val = c.png (1 box).
Pixel-edge boxes: a: cat (4, 2, 12, 10), dog (20, 5, 36, 25); c: dog (0, 0, 10, 6)."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["cat", "dog"]
BOXES = {"a": [[4.0, 2.0, 12.0, 10.0], [20.0, 5.0, 36.0, 25.0]], "b": [], "c": [[0.0, 0.0, 10.0, 6.0]]}
LABELS = {"a": [0, 1], "b": [], "c": [1]}
SPLITS = {"train": ["a", "b"], "val": ["c"]}


def image(folder: Path, stem: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((30, 40), np.uint8)
    arr[2:10, 4:12] = 200 if stem == "a" else 0
    Image.fromarray(arr).save(folder / f"{stem}.png")


def write_coco(root: Path) -> Path:
    bbox = {"a": [[4, 2, 8, 8], [20, 5, 16, 20]], "b": [], "c": [[0, 0, 10, 6]]}
    for split, stems in SPLITS.items():
        doc: dict = {
            "images": [],
            "annotations": [],
            "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "dog"}],
        }
        for i, s in enumerate(stems):
            image(root / split / "images", s)
            doc["images"].append({"id": i, "file_name": f"images/{s}.png", "width": 40, "height": 30})
            for b, k in zip(bbox[s], LABELS[s], strict=True):
                doc["annotations"].append(
                    {"id": len(doc["annotations"]), "image_id": i, "category_id": [7, 9][k], "bbox": b}
                )
        (root / split / "annotations.json").write_text(json.dumps(doc))
    return root


VOC = {  # devkit convention: 1-based inclusive xmin ymin xmax ymax
    "a": "<object><name>cat</name><difficult>1</difficult><bndbox><xmin>5</xmin><ymin>3</ymin><xmax>12</xmax><ymax>10</ymax></bndbox></object>"
    "<object><name>dog</name><bndbox><xmin>21</xmin><ymin>6</ymin><xmax>36</xmax><ymax>25</ymax></bndbox></object>",
    "b": "",
    "c": "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>6</ymax></bndbox></object>",
}


def write_voc(root: Path) -> Path:
    """The devkit layout: Annotations/, JPEGImages/, ImageSets/Main/{train,val}.txt."""
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for split, stems in SPLITS.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
        for s in stems:
            image(root / "JPEGImages", s)
            xml = f"<annotation><filename>{s}.png</filename>{VOC[s]}</annotation>"
            (root / "Annotations" / f"{s}.xml").write_text(xml)
    return root


YOLO = {
    "a": "0 0.2 0.2 0.2 0.2666666667\n1 0.7 0.5 0.4 0.6666666667\n",
    "c": "1 0.125 0.1 0.25 0.2\n",
}  # b.png has no label file: a negative


def write_yolo(root: Path) -> Path:
    """Ultralytics' layout: images/{train,val}/, labels/{train,val}/, data.yaml."""
    (root).mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text("names:\n  0: cat\n  1: dog\n")
    for split, stems in SPLITS.items():
        (root / "labels" / split).mkdir(parents=True)
        for s in stems:
            image(root / "images" / split, s)
            if s in YOLO:
                (root / "labels" / split / f"{s}.txt").write_text(YOLO[s])
    return root
