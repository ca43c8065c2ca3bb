"""The same hand-written sample in COCO, VOC and YOLO reads into the same boxes and labels; layouts told apart."""

import pytest
import torch
from tests.data.detection_sample import BOXES, CLASSES, LABELS, SPLITS, write_coco, write_voc, write_yolo

from cnnkit.data.detection_layout import detect_layout, read_detection_folder
from cnnkit.errors import DataError


@pytest.mark.parametrize("fmt,writer", [("coco", write_coco), ("voc", write_voc), ("yolo", write_yolo)])
def test_each_format_reads_into_the_same_boxes(tmp_path, fmt, writer):
    root = writer(tmp_path / fmt)
    assert detect_layout(root) == fmt
    data = read_detection_folder(root)
    assert data.class_names == CLASSES and data.skipped == [] and data.test is None and data.channels == 1
    for split_name, stems in SPLITS.items():
        split = getattr(data, split_name)
        assert [n.rsplit("/", 1)[-1] for n in split.names] == [f"{s}.png" for s in stems] and split.images.shape[
            1:
        ] == (1, 30, 40)
        for i, s in enumerate(stems):
            assert split.boxes[i].shape == (len(BOXES[s]), 4)  # b.png: a negative, kept with no box
            torch.testing.assert_close(split.boxes[i], torch.tensor(BOXES[s]).reshape(-1, 4), atol=1e-4, rtol=0)
            assert split.labels[i].tolist() == LABELS[s]
    assert int(data.train.images[0].max()) == 200 and int(data.train.images[1].max()) == 0


def test_ambiguous_and_unknown_layouts_are_named(tmp_path):
    write_coco(tmp_path)
    (tmp_path / "labels").mkdir()
    with pytest.raises(DataError, match="ambiguous detection layout, it looks like coco and yolo"):
        detect_layout(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no known detection layout; expected one of: coco: .*voc: .*yolo: "):
        read_detection_folder(empty)


def test_a_missing_val_split_is_named(tmp_path):
    write_yolo(tmp_path)
    (tmp_path / "images" / "val").rename(tmp_path / "images" / "other")
    with pytest.raises(DataError, match="no val images in the yolo layout"):
        read_detection_folder(tmp_path)


def test_other_sizes_are_skipped_or_resized_with_their_boxes(tmp_path):
    import numpy as np
    from PIL import Image

    root = write_voc(tmp_path)
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(root / "JPEGImages" / "b.png")
    data = read_detection_folder(root)
    assert len(data.train) == 1 and [s.path.rsplit("/", 1)[-1] for s in data.skipped] == ["b.png"]
    assert "differs from the split's (1, 30, 40); --image-size N fits" in data.skipped[0].reason
    data = read_detection_folder(root, size=20)  # letterboxed: 40x30 by 1/2 to 20x15, b.png's 80x60 by 1/4
    assert data.skipped == [] and data.train.images.shape == (2, 1, 20, 20) and data.val.images.shape[2:] == (20, 20)
    torch.testing.assert_close(  # x and y by the same 1/2: the boxes keep their shape
        data.train.boxes[0], torch.tensor([[2.0, 1.0, 6.0, 5.0], [10.0, 2.5, 18.0, 12.5]]), atol=1e-5, rtol=0
    )
    assert data.train.images[0, 0, 2, 3] > 100  # the rectangle moved with its box
    assert (data.train.images[:, :, 15:, :] == 0).all()  # rows 15-19: the padding below the 20x15 image


def test_letterboxing_matches_the_detectors_own_resize_at_prediction(tmp_path):
    """`cnnkit predict` hands torchvision's detector transform the image as it is (min_size = max_size =
    the training side): it keeps the aspect ratio too, so boxes and image sizes agree with training's."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    root = write_voc(tmp_path)
    raw, boxed = read_detection_folder(root), read_detection_folder(root, size=20)
    transform = GeneralizedRCNNTransform(min_size=20, max_size=20, image_mean=[0.0], image_std=[1.0]).eval()
    image = raw.train.images[0].float() / 255
    batch, targets = transform([image], [{"boxes": raw.train.boxes[0], "labels": raw.train.labels[0]}])
    assert batch.image_sizes[0] == (15, 20)  # the 40x30 image's own shape, as letterboxed in training
    torch.testing.assert_close(targets[0]["boxes"], boxed.train.boxes[0], atol=1e-5, rtol=0)
