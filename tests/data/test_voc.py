"""VOC XML: clipping, degenerate boxes, bad XML, unknown classes and missing files are skipped and named."""

import pytest
from tests.data.detection_sample import image, write_voc

from cnnkit.data.detection_layout import read_detection_folder
from cnnkit.data.voc import parse_xml, voc_xml
from cnnkit.errors import DataError


def test_bad_objects_are_skipped_and_named_and_boxes_clipped(tmp_path):
    root = write_voc(tmp_path)
    (root / "Annotations" / "a.xml").write_text(
        voc_xml("a.png", 40, 30, 1, [[30.0, -4.0, 55.0, 8.0], [5.0, 5.0, 5.5, 9.0]], ["cat", "dog"])
    )  # the first reaches outside the 40x30 image (clipped), the second is half a pixel wide
    (root / "Annotations" / "b.xml").write_text("<annotation><object>")  # not XML
    (root / "ImageSets" / "Main" / "val.txt").write_text("c\nmissing\n")
    data = read_detection_folder(root)
    assert data.train.boxes[0].tolist() == [[30.0, 0.0, 40.0, 8.0]] and data.train.labels[0].tolist() == [0]
    assert len(data.train) == 1 and len(data.val) == 1
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in data.skipped}
    assert set(reasons) == {"a.xml: object 1", "b.xml", "missing.xml"}
    assert reasons["a.xml: object 1"].startswith("degenerate box [5.0, 5.0, 5.5, 9.0]")
    assert "not readable VOC XML" in reasons["b.xml"] and "annotation file is missing" in reasons["missing.xml"]
    with pytest.raises(DataError, match=r"b.xml: not readable VOC XML.*drop --strict"):
        read_detection_folder(root, strict=True)


def test_bndbox_without_numbers_and_unknown_class(tmp_path):
    bad = tmp_path / "x.xml"
    bad.write_text("<annotation><object><name>cat</name><bndbox><xmin>a</xmin></bndbox></object></annotation>")
    skipped = []
    assert parse_xml(bad, lambda where, why: skipped.append((where, why))) == (None, [])
    assert skipped == [(f"{bad}: object 0", "<bndbox> must hold numeric xmin, ymin, xmax, ymax")]
    root = write_voc(tmp_path / "voc")
    (root / "classes.txt").write_text("dog\n")
    data = read_detection_folder(root)
    assert data.class_names == ["dog"] and data.train.labels[0].tolist() == [0]
    assert [s.reason for s in data.skipped] == [f"class 'cat' is not in {root / 'classes.txt'}"]


def test_per_split_folder_layout(tmp_path):
    for split, stem in (("train", "a"), ("val", "c")):
        image(tmp_path / split / "JPEGImages", stem)
        (tmp_path / split / "Annotations").mkdir(parents=True)
        (tmp_path / split / "Annotations" / f"{stem}.xml").write_text(
            voc_xml(f"{stem}.png", 40, 30, 1, [[1.0, 2.0, 9.0, 8.0]], ["cat"])
        )
    data = read_detection_folder(tmp_path)
    assert data.class_names == ["cat"] and data.val.boxes[0].tolist() == [[1.0, 2.0, 9.0, 8.0]]
