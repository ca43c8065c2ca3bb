"""Detection data: COCO JSON read into the same boxes it was written with; bad annotations skipped and named."""

import json

import pytest
import torch

from cnnkit.data.detection import DetectionSplit, clip_box, read_coco, write_coco
from cnnkit.errors import DataError


def _split():
    images = torch.zeros(3, 1, 32, 32, dtype=torch.uint8)
    images[0, 0, 2:10, 4:12] = 200
    boxes = [
        torch.tensor([[4.0, 2.0, 12.0, 10.0], [20.0, 20.0, 30.0, 31.0]]),
        torch.zeros(0, 4),
        torch.tensor([[0.0, 0.0, 5.0, 7.0]]),
    ]
    labels = [torch.tensor([1, 0]), torch.zeros(0, dtype=torch.int64), torch.tensor([2])]
    return DetectionSplit(images, boxes, labels)


def test_write_then_read_gives_the_same_boxes_and_keeps_negatives(tmp_path):
    split = _split()
    write_coco(split, ["a", "b", "c"], tmp_path)
    back, classes, skipped = read_coco(tmp_path)
    assert classes == ["a", "b", "c"] and skipped == []
    assert torch.equal(back.images, split.images)
    assert len(back) == 3 and back.boxes[1].shape == (0, 4)  # the image with no object is kept
    for a, b in zip(back.boxes, split.boxes, strict=True):
        assert torch.equal(a, b)
    assert [t.tolist() for t in back.labels] == [[1, 0], [], [2]]


def test_clip_box():
    assert clip_box(-3, 5, 10, 4, 32, 32) == (0.0, 5.0, 7.0, 9.0)
    assert clip_box(30, 30, 10, 10, 32, 32) == (30.0, 30.0, 32.0, 32.0)
    assert clip_box(40, 0, 5, 5, 32, 32) is None  # wholly outside
    assert clip_box(3, 3, 0.5, 9, 32, 32) is None  # under a pixel wide


def test_bad_annotations_are_skipped_and_named(tmp_path):
    write_coco(_split(), ["a", "b", "c"], tmp_path)
    doc = json.loads((tmp_path / "annotations.json").read_text())
    doc["annotations"] += [
        {"id": 90, "image_id": 0, "category_id": 7, "bbox": [1, 1, 5, 5]},  # unknown category
        {"id": 91, "image_id": 0, "category_id": 0, "bbox": [1, 1, 0, 5]},  # zero width
        {"id": 92, "image_id": 55, "category_id": 0, "bbox": [1, 1, 5, 5]},  # unknown image
        {"id": 93, "image_id": 0, "category_id": 0, "bbox": "1 1 5 5"},  # malformed
        {"id": 94, "image_id": 2, "category_id": 1, "bbox": [28, -2, 10, 6]},  # clipped to (28, 0, 32, 4)
    ]
    doc["images"].append({"id": 3, "file_name": "images/missing.png", "width": 32, "height": 32})
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    split, _, skipped = read_coco(tmp_path)
    reasons = {s.path.rsplit(" ", 1)[-1]: s.reason for s in skipped}
    assert set(reasons) == {"90", "91", "92", "93", str(tmp_path / "images/missing.png")}
    assert "category_id 7" in reasons["90"] and "degenerate" in reasons["91"] and "image_id 55" in reasons["92"]
    assert split.boxes[2].tolist() == [[0.0, 0.0, 5.0, 7.0], [28.0, 0.0, 32.0, 4.0]]
    with pytest.raises(DataError, match="annotation 90: category_id 7 is not in categories.*drop --strict"):
        read_coco(tmp_path, strict=True)  # annotations are checked before the images are read
    doc["annotations"] = doc["annotations"][:-5]
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="missing.png: image not read.*drop --strict"):
        read_coco(tmp_path, strict=True)


def test_missing_annotations_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="annotations.json: not found"):
        read_coco(tmp_path)
