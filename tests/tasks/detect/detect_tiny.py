"""A few 64x64 scenes of two box-shaped digits and a config for the tiny Faster R-CNN (width 4)."""

import torch

from cnnkit.config import Config
from cnnkit.data.detection import DetectionData, DetectionSplit
from cnnkit.data.scenes import make_scenes


def tiny_data(n: int = 4) -> DetectionData:
    digits = torch.zeros(2, 28, 28, dtype=torch.uint8)
    digits[0, 6:22, 10:18] = 255
    digits[1, 8:20, 6:22] = 255
    s = make_scenes(digits, torch.tensor([0, 1]), n, size=64, seed=3, max_digits=2)
    split = DetectionSplit(s.images, s.boxes, s.labels)
    return DetectionData("tiny", ["a", "b"], split, split.subset([0, 1]), None)


def tiny_cfg(tmp_path, **train):
    return Config.from_dict(
        {
            "model": {"kwargs": {"width": 4}},
            "train": {"epochs": 2, "batch_size": 4, **train},
            "runtime": {"device": "cpu"},
            "run": {"runs_dir": str(tmp_path), "name": "det"},
        }
    )
