"""`cnnkit predict RUN IMAGE...` for a detection checkpoint: each image with its boxes drawn, labelled
with class and score (`<stem>_boxes.png`, enlarged to at least 256 px so the labels read), into
--save-images DIR (default: the current folder); prints (or --format json writes) every detection
above --threshold (default 0.5)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnkit.data.images import ImageError, load_image
from cnnkit.inference import expand_paths
from cnnkit.tasks.detect.metrics import detect
from cnnkit.tasks.detect.train import detector_from_checkpoint, is_detection_run, load_detector_checkpoint

DRAW_SIDE = 256  # drawn images are enlarged (nearest) to at least this short side


def is_detect_checkpoint(path: str | Path) -> bool:
    """Whether `path` (a checkpoint or a run folder) holds a detection model; False for anything unreadable."""
    p = Path(path)
    if p.is_dir():
        return is_detection_run(p)
    try:
        return bool(load_detector_checkpoint(p)["task"] == "detect")
    except Exception:  # the classification path reports what is wrong with the file
        return False


@dataclass
class Detection:
    label: str
    score: float
    box: list[float]  # x1, y1, x2, y2 in the image's pixels


@dataclass
class ImageDetections:
    source: str
    image_file: str
    detections: list[Detection] = field(default_factory=list)


class Detector:
    """A detection checkpoint ready to run: `detect(image uint8 (C, H, W)) -> [Detection]`."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu", threshold: float = 0.5):
        self.ckpt = load_detector_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.model = detector_from_checkpoint(self.ckpt).to(self.device)
        self.channels = int(self.ckpt["input"]["channels"])
        self.class_names: list[str] = list(self.ckpt["class_names"])
        self.threshold = threshold

    def detect(self, image: np.ndarray) -> list[Detection]:
        out = detect(self.model, torch.from_numpy(image)[None], self.device)[0]
        keep = out["scores"] >= self.threshold
        return [
            Detection(self.class_names[int(c)], round(float(s), 4), [round(v, 1) for v in b.tolist()])
            for b, s, c in zip(out["boxes"][keep], out["scores"][keep], out["labels"][keep], strict=True)
        ]


def draw(image: np.ndarray, detections: list[Detection], *, scores: bool = True) -> np.ndarray:
    """(H', W', 3) uint8: the image (enlarged to DRAW_SIDE) with each box and "class score" (or only the class)."""
    from torchvision.utils import draw_bounding_boxes

    t = torch.from_numpy(image)
    t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
    scale = max(1, -(-DRAW_SIDE // min(t.shape[1:])))
    t = t.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    if detections:
        boxes = torch.tensor([d.box for d in detections]) * scale
        labels = [f"{d.label} {d.score:.2f}" if scores else d.label for d in detections]
        t = draw_bounding_boxes(t, boxes, labels, colors="lime", width=2)
    return t.permute(1, 2, 0).numpy()


def predict_command(args: argparse.Namespace) -> int:
    """The `predict` verb's body for a detection checkpoint (tasks/detect/commands.py adds it to predict)."""
    from cnnkit.data.detection import png_bytes
    from cnnkit.io_safety import write_file

    threshold = args.threshold if getattr(args, "threshold", None) is not None else 0.5
    det = Detector(args.checkpoint, device=args.device if args.device != "auto" else "cpu", threshold=threshold)
    out_dir = Path(args.save_images) if args.save_images else Path.cwd()
    done: list[ImageDetections] = []
    errors: list[tuple[str, str]] = []
    for path in expand_paths(args.paths):
        try:
            image = load_image(path, det.channels)
        except ImageError as e:
            errors.append((str(path), str(e)))
            continue
        found = det.detect(image)
        target = out_dir / f"{path.stem}_boxes.png"
        write_file(target, png_bytes(draw(image, found)))
        done.append(ImageDetections(str(path), str(target), found))
    if args.format == "json":
        text = json.dumps([asdict(d) for d in done], indent=2)
    else:
        text = "\n".join(
            f"{d.source}: {len(d.detections)} objects ({Path(d.image_file).name}) "
            + ", ".join(f"{x.label} {x.score:.2f} at {x.box}" for x in d.detections)
            for d in done
        )
    if done:
        print(text)
        if args.out:
            write_file(args.out, text + "\n")
    for source, error in errors:
        print(f"cnnkit predict: could not read {source}: {error}", file=sys.stderr)
    if not done and not errors:
        print("cnnkit predict: no image files found in the given paths", file=sys.stderr)
    return 0 if done and not errors else 1
