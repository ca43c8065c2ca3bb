"""data/masks.py: mask files read as class indices (grayscale, palette, 0/255), classes.txt, bad masks."""

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.images import ImageError
from cnnkit.data.masks import check_mask, is_binary, read_classes, read_mask, to_classes
from cnnkit.errors import DataError


def test_palette_png_reads_its_indices_not_its_colours(tmp_path):
    idx = np.array([[0, 1], [2, 255]], np.uint8)
    img = Image.fromarray(idx, mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [9, 9, 9] * 253)
    img.save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").tolist() == [[0, 1], [2, 255]]


def test_grayscale_mask_and_rgb_refused(tmp_path):
    Image.fromarray(np.array([[3, 0]], np.uint8)).save(tmp_path / "g.png")
    assert read_mask(tmp_path / "g.png").tolist() == [[3, 0]]
    Image.new("RGB", (2, 2)).save(tmp_path / "c.png")
    with pytest.raises(ImageError, match="c.png: a RGB mask"):
        read_mask(tmp_path / "c.png")


def test_binary_masks_map_255_to_foreground_others_keep_255_as_ignore():
    binary = [np.array([[0, 255]], np.uint8), np.array([[0, 0]], np.uint8)]
    assert is_binary(binary)
    assert to_classes(binary[0], True).tolist() == [[0, 1]]
    indexed = [np.array([[0, 1, 255]], np.uint8)]
    assert not is_binary(indexed)
    assert to_classes(indexed[0], False).tolist() == [[0, 1, 255]]


def test_check_mask_names_size_mismatch_and_unknown_index():
    m = np.array([[0, 1, 5], [255, 0, 1]], np.uint8)
    assert check_mask(m, (2, 3), 6) is None
    assert check_mask(m, (3, 3), 6) == "mask is 3x2 but its image is 3x3"
    assert check_mask(m, (2, 3), 3) == "unknown class index 5 (the classes are 0-2; 255 = ignore)"


def test_classes_file(tmp_path):
    assert read_classes(tmp_path) is None
    (tmp_path / "classes.txt").write_text("background\n cat \n\ndog\n")
    assert read_classes(tmp_path) == ["background", "cat", "dog"]
    (tmp_path / "classes.txt").write_text("only\n")
    with pytest.raises(DataError, match="classes.txt: lists 1 class"):
        read_classes(tmp_path)
