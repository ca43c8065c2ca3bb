"""mnist-scenes: boxes tight around the pasted digits, masks on the same pixels, deterministic by seed."""

import pytest
import torch

from cnnkit.config import DataConfig
from cnnkit.data._registry import build_dataset
from cnnkit.data.scenes import THRESHOLD, build_scenes, make_scenes


def _digits():
    # three synthetic "digits": a filled square of side 10, 16 and a 4x20 bar, labels 3, 7, 1
    d = torch.zeros(3, 28, 28, dtype=torch.uint8)
    d[0, 9:19, 9:19] = 255
    d[1, 6:22, 6:22] = 255
    d[2, 4:24, 12:16] = 255
    return d, torch.tensor([3, 7, 1])


def test_boxes_and_masks_match_the_pasted_pixels():
    digits, labels = _digits()
    s = make_scenes(digits, labels, 30, size=64, seed=5)
    assert s.images.shape == (30, 1, 64, 64) and s.masks.shape == (30, 64, 64)
    n_boxes = 0
    for i in range(30):
        on = s.images[i, 0] >= THRESHOLD
        assert torch.equal(on, s.masks[i] > 0)  # the mask is exactly the digits' bright pixels
        covered = torch.zeros_like(on)
        for box, label in zip(s.boxes[i].long().tolist(), s.labels[i].tolist(), strict=True):
            x1, y1, x2, y2 = box
            inside = s.masks[i, y1:y2, x1:x2]
            assert set(inside.unique().tolist()) <= {0, 1 + label}  # one digit per box, its own class
            region = on[y1:y2, x1:x2]  # tight: every edge row / column holds a digit pixel
            assert region[0].any() and region[-1].any() and region[:, 0].any() and region[:, -1].any()
            covered[y1:y2, x1:x2] = True
            n_boxes += 1
        assert not (on & ~covered).any()  # no bright pixel outside every box
        assert 1 <= len(s.boxes[i]) <= 5
    assert n_boxes >= 30


def test_same_seed_same_scenes_other_seed_other_scenes():
    digits, labels = _digits()
    a = make_scenes(digits, labels, 8, seed=1)
    b = make_scenes(digits, labels, 8, seed=1)
    c = make_scenes(digits, labels, 8, seed=2)
    assert torch.equal(a.images, b.images) and all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes, strict=True))
    assert not torch.equal(a.images, c.images)


def test_registered_dataset_gives_masks_with_11_classes(tmp_path):
    # an empty data root: built from the bundled mnist-mini
    cfg = DataConfig(dataset="mnist-scenes", root=str(tmp_path))
    splits, source = build_scenes(cfg, 0, counts={"train": 20, "test": 6})
    assert source.startswith("mnist-mini") and [len(splits[k]) for k in ("train", "val", "test")] == [18, 2, 6]
    data = build_dataset(cfg)
    assert data.num_classes == 11 and data.class_names[:2] == ["background", "0"]
    assert data.train.masks and tuple(data.train.images.shape[1:]) == (1, 64, 64)
    assert int(data.train.labels.max()) <= 10 and len(data.test) == 400


def test_datasets_make_writes_coco_and_masks_that_read_back(tmp_path, monkeypatch):
    import cnnkit.data.scenes as scenes
    from cnnkit.cli import main
    from cnnkit.data.detection import read_coco

    real = scenes.build_scenes
    monkeypatch.setattr(
        scenes, "build_scenes", lambda cfg, seed, counts=None: real(cfg, seed, {"train": 10, "test": 3})
    )
    out = tmp_path / "scenes"
    assert main(["datasets", "make", "mnist-scenes", "--out", str(out), "--data-root", str(tmp_path)]) == 0
    split, classes, skipped = read_coco(out / "train")
    made, _ = real(DataConfig(root=str(tmp_path)), 0, {"train": 10, "test": 3})
    assert classes == [str(d) for d in range(10)] and skipped == [] and len(split) == 9
    assert all(torch.equal(a, b) for a, b in zip(split.boxes, made["train"].boxes, strict=True))
    assert torch.equal(split.images, made["train"].images)
    import numpy as np
    from PIL import Image

    mask = torch.from_numpy(np.array(Image.open(out / "test" / "masks" / "00002.png"))).long()
    assert torch.equal(mask, made["test"].masks[2])


@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_datasets_make_in_voc_and_yolo_reads_back_the_same_boxes(tmp_path, monkeypatch, fmt):
    import cnnkit.data.scenes as scenes
    from cnnkit.cli import main
    from cnnkit.data.detection_layout import read_detection_folder

    real = scenes.build_scenes
    monkeypatch.setattr(scenes, "build_scenes", lambda cfg, seed, counts=None: real(cfg, seed, {"train": 6, "test": 2}))
    out = tmp_path / fmt
    argv = ["datasets", "make", "mnist-scenes", "--out", str(out), "--format", fmt, "--data-root", str(tmp_path)]
    assert main(argv) == 0
    data = read_detection_folder(out)
    made, _ = real(DataConfig(root=str(tmp_path)), 0, {"train": 6, "test": 2})
    assert data.source == f"{out} ({fmt})" and data.class_names == [str(d) for d in range(10)] and data.skipped == []
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        assert torch.equal(split.images, made[name].images)
        for a, b in zip(split.boxes, made[name].boxes, strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # YOLO's fractions: within 1e-4 px
        assert [t.tolist() for t in split.labels] == [t.tolist() for t in made[name].labels]
