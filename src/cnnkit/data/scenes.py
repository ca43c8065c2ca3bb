"""mnist-scenes: 1-5 real MNIST digits pasted at random scales and positions on a larger black canvas,
with exact labels for both dense tasks (issue 17):
- a segmentation mask per scene: 0 background, 1 + digit for the digit's own pixels (>= 128 after resizing);
- a box per digit, tight around those same pixels, (x1, y1, x2, y2) in pixel edges (x2 = last column + 1),
  and its class (the digit 0-9).

Digits never overlap (a placement that would touch another digit's box is redrawn, up to 20 times, then
that digit is left out), so every mask pixel and box belongs to one visible digit. Generated in memory from
the full MNIST under the data root when it is there (train digits for train scenes, test digits for test),
else from the bundled mnist-mini; seeded: the same digits and seed give the same scenes, bit for bit.
Never downloaded, nothing cached: 2,000 scenes take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.detection import DetectionData, DetectionSplit
from cnnkit.data.types import Dataset, Split
from cnnkit.errors import ConfigError

NAME = "mnist-scenes"
CLASSES = [str(d) for d in range(10)]
SIZE = 64  # canvas side
COUNTS = {"train": 2000, "test": 400}
THRESHOLD = 128  # a pasted pixel at or above this belongs to the digit (mask and box)


@dataclass
class Scenes:
    """images (N, 1, S, S) uint8; masks (N, S, S) int64 (0 background, 1 + digit); per scene its boxes
    (K, 4) float32 xyxy and their classes (K,) int64 (the digit)."""

    images: torch.Tensor
    masks: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]

    def __len__(self) -> int:
        return self.images.shape[0]


def _overlaps(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2 for b in taken)


def make_scenes(
    digits: torch.Tensor,
    digit_labels: torch.Tensor,
    count: int,
    *,
    size: int = SIZE,
    seed: int = 0,
    max_digits: int = 5,
    scale: tuple[float, float] = (0.6, 1.2),
) -> Scenes:
    """`count` scenes of side `size` from `digits` (N, 28, 28) uint8 (white on black) and their labels."""
    rng = np.random.default_rng(seed)
    images = torch.zeros(count, 1, size, size, dtype=torch.uint8)
    masks = torch.zeros(count, size, size, dtype=torch.int64)
    all_boxes, all_labels = [], []
    for i in range(count):
        boxes: list[tuple[int, int, int, int]] = []
        labels: list[int] = []
        for _ in range(int(rng.integers(1, max_digits + 1))):
            k = int(rng.integers(len(digits)))
            side = max(8, min(size, round(28 * float(rng.uniform(*scale)))))
            patch = F.interpolate(
                digits[k][None, None].float(), size=(side, side), mode="bilinear", align_corners=False
            )
            patch = patch[0, 0].round().clamp(0, 255).to(torch.uint8)  # (side, side)
            on = patch >= THRESHOLD
            if not on.any():
                continue
            ys, xs = torch.nonzero(on, as_tuple=True)
            tight = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)  # within the patch
            for _try in range(20):
                ox, oy = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
                box = (ox + tight[0], oy + tight[1], ox + tight[2], oy + tight[3])
                if not _overlaps(box, boxes):
                    break
            else:
                continue  # no free place: the digit is left out
            region = images[i, 0, oy : oy + side, ox : ox + side]
            # patches may overlap where they are faint (< THRESHOLD, outside the tight boxes): keep the brighter
            torch.maximum(region, patch, out=region)
            masks[i, oy : oy + side, ox : ox + side][on] = 1 + int(digit_labels[k])
            boxes.append(box)
            labels.append(int(digit_labels[k]))
        all_boxes.append(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        all_labels.append(torch.tensor(labels, dtype=torch.int64))
    return Scenes(images, masks, all_boxes, all_labels)


def _digits(cfg: DataConfig) -> tuple[Split, Split, str]:
    """(train digits, test digits, where from): the full MNIST under the data root, else mnist-mini."""
    from cnnkit.data.mnist import MNIST_FILES, missing_idx_files, mnist_mini_dir, read_idx_pair
    from cnnkit.data.paths import data_root

    folder = data_root(cfg.root) / "mnist"
    if folder.is_dir() and not missing_idx_files(folder, MNIST_FILES):
        return read_idx_pair(folder, "train", 60000), read_idx_pair(folder, "t10k", 10000), str(folder)
    mini = mnist_mini_dir()
    return read_idx_pair(mini, "train", 10000), read_idx_pair(mini, "t10k", 2000), "mnist-mini (bundled)"


def build_scenes(cfg: DataConfig, seed: int, counts: dict[str, int] | None = None) -> tuple[dict[str, Scenes], str]:
    """Train / val / test scenes: val is the last `val_fraction` of the train scenes (same digit pool),
    test scenes come from the test digits. The scenes' seed is fixed (0), not the run's: the same
    dataset for every run, like any other built-in one; `seed` is unused."""
    counts = counts or COUNTS
    train_digits, test_digits, source = _digits(cfg)
    train = make_scenes(train_digits.images[:, 0], train_digits.labels, counts["train"], seed=0)
    test = make_scenes(test_digits.images[:, 0], test_digits.labels, counts["test"], seed=1)
    n_val = max(1, round(len(train) * cfg.val_fraction))
    cut = len(train) - n_val
    return {"train": _take(train, 0, cut), "val": _take(train, cut, len(train)), "test": test}, source


def _take(s: Scenes, lo: int, hi: int) -> Scenes:
    return Scenes(s.images[lo:hi], s.masks[lo:hi], s.boxes[lo:hi], s.labels[lo:hi])


@register_dataset(
    NAME,
    description="1-5 MNIST digits on a 64x64 canvas: masks (background + 10 digits) and boxes (--task detect)",
    num_classes=11,
    size="1,800 train / 200 val / 400 test, 1x64x64, masks and boxes",
    location="generated from <data root>/mnist, else the bundled mnist-mini (never downloaded)",
    status=lambda root: ("generated in memory", "present (generated)"),
)
def build_scenes_segmentation(cfg: DataConfig, seed: int) -> Dataset:
    """The segmentation view: masks as labels, classes background + the 10 digits."""
    splits, source = build_scenes(cfg, seed)
    as_split = {k: Split(v.images, v.masks) for k, v in splits.items()}
    return Dataset(NAME, ["background", *CLASSES], as_split["train"], as_split["val"], as_split["test"], source=source)


def build_scenes_detection(cfg: DataConfig, counts: dict[str, int] | None = None) -> DetectionData:
    """The detection view: each scene's boxes and digit classes (0-9)."""
    splits, source = build_scenes(cfg, 0, counts)
    as_split = {k: DetectionSplit(v.images, v.boxes, v.labels) for k, v in splits.items()}
    return DetectionData(NAME, list(CLASSES), as_split["train"], as_split["val"], as_split["test"], source=source)


FORMATS = ("coco", "voc", "yolo")


def write_scenes(
    out: str | Path, root: str | None = None, counts: dict[str, int] | None = None, fmt: str = "coco"
) -> dict[str, int]:
    """`cnnkit datasets make mnist-scenes --out DIR [--format coco|voc|yolo]`: DIR/{train,val,test}/ each
    with its boxes in that format (coco: annotations.json + images/; voc: Annotations/*.xml + JPEGImages/;
    yolo: images/ + labels/; class names in DIR/classes.txt (voc), DIR/data.yaml (yolo)) and masks/NNNNN.png (class indices,
    0 background, 1 + digit); returns the scene count per split. Readable back with `--task detect --data DIR`."""
    from cnnkit.data.detection import png_bytes, write_coco
    from cnnkit.data.voc import write_voc
    from cnnkit.data.yolo import write_yolo, write_yolo_names
    from cnnkit.io_safety import write_file

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    splits, _ = build_scenes(DataConfig(dataset=NAME, root=root), 0, counts)
    for name, s in splits.items():
        folder = Path(out) / name
        split = DetectionSplit(s.images, s.boxes, s.labels)
        if fmt == "coco":
            write_coco(split, list(CLASSES), folder)
        elif fmt == "voc":
            write_voc(split, list(CLASSES), folder)
        else:
            write_yolo(split, folder)
        for i in range(len(s)):
            write_file(folder / "masks" / f"{i:05d}.png", png_bytes(s.masks[i].to(torch.uint8).numpy()))
    if fmt == "yolo":
        write_yolo_names(out, list(CLASSES))
    if fmt == "voc":  # all ten classes, also those no scene of a small set holds
        write_file(Path(out) / "classes.txt", "".join(f"{c}\n" for c in CLASSES))
    return {k: len(v) for k, v in splits.items()}


def write_scenes_cli(name: str | None, out: str | None, root: str | None, fmt: str | None = None) -> int:
    if name != NAME or not out:
        raise ConfigError(f"cnnkit datasets make: use `cnnkit datasets make {NAME} --out DIR [--format coco|voc|yolo]`")
    sizes = write_scenes(out, root, fmt=fmt or "coco")
    print(f"wrote {NAME} into {out} ({fmt or 'coco'}): " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + " scenes")
    return 0
