"""YOLO txt: bad lines, unknown classes, degenerate and outside boxes, negatives, class-name files."""

import pytest
from tests.data.detection_sample import write_yolo

from cnnkit.data.detection_layout import read_detection_folder
from cnnkit.data.yolo import yolo_classes
from cnnkit.errors import DataError


def test_bad_lines_are_skipped_and_named_and_boxes_clipped(tmp_path):
    root = write_yolo(tmp_path)
    label = root / "labels" / "train" / "a.txt"
    label.write_text("0 0.95 0.5 0.2 0.2\n\n1 0.5 0.5 0.2\n5 0.5 0.5 0.1 0.1\n1 0.5 0.5 0 0.3\nx 0.5 0.5 0.1 0.1\n")
    data = read_detection_folder(root)
    # cx 0.95 w 0.2 on 40 px: x 34..42 clipped to 40; cy 0.5 h 0.2 on 30 px: y 12..18
    assert data.train.boxes[0][0].tolist() == pytest.approx([34.0, 12.0, 40.0, 18.0]) and len(data.train.boxes[0]) == 1
    assert data.train.boxes[1].shape == (0, 4)  # b.png: no label file, a negative
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in data.skipped}
    assert set(reasons) == {"a.txt:3", "a.txt:4", "a.txt:5", "a.txt:6"}
    assert "expected `class cx cy w h`" in reasons["a.txt:3"] and "4 fields" in reasons["a.txt:3"]
    assert reasons["a.txt:4"] == "class 5 is not an index of the 2 class names"
    assert reasons["a.txt:5"].startswith("degenerate box") and "expected" in reasons["a.txt:6"]
    with pytest.raises(DataError, match=r"a.txt:3: expected .*drop --strict"):
        read_detection_folder(root, strict=True)


def test_class_names_from_each_file(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [a, b]\n")
    assert yolo_classes(tmp_path) == ["a", "b"]
    (tmp_path / "data.yaml").unlink()
    (tmp_path / "obj.names").write_text("x\ny\n\n")
    assert yolo_classes(tmp_path) == ["x", "y"]
    (tmp_path / "obj.names").unlink()
    with pytest.raises(DataError, match="no single class-name file; .*data.yaml"):
        yolo_classes(tmp_path)
    (tmp_path / "data.yaml").write_text("names: 3\n")
    with pytest.raises(DataError, match="data.yaml: `names` must be a list"):
        yolo_classes(tmp_path)


def test_per_split_folder_layout_with_valid(tmp_path):
    root = write_yolo(tmp_path)
    for split, new in (("train", "train"), ("val", "valid")):
        (root / new).mkdir(exist_ok=True)
        (root / "images" / split).rename(root / new / "images")
        (root / "labels" / split).rename(root / new / "labels")
    (root / "images").rmdir()
    (root / "labels").rmdir()
    data = read_detection_folder(root)
    assert len(data.train) == 2 and data.val.boxes[0][0].tolist() == pytest.approx([0.0, 0.0, 10.0, 6.0])
