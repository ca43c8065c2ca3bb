"""data/isbi.py: isbi2012-membrane read from the data root (a fake copy in tmp_path; the real one
when ../shared/datasets has it), 20 / 5 slices, membrane = class 0, cell = class 1."""

import numpy as np
import pytest
from PIL import Image
from tests.conftest import SHARED

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset, list_datasets
from cnnkit.errors import DataError


def _fake(root, side=8):
    for sub in ("image", "label"):
        (root / "isbi2012-membrane" / sub).mkdir(parents=True)
    for i in range(25):
        img = np.full((side, side), 40 + i, np.uint8)
        label = np.full((side, side), 255, np.uint8)
        label[:, :2] = 0  # membrane: the first two columns
        Image.fromarray(img).save(root / "isbi2012-membrane" / "image" / f"{i}.png")
        Image.fromarray(label).save(root / "isbi2012-membrane" / "label" / f"{i}.png")
    return root


def test_fake_copy_gives_the_issue_split_and_classes(tmp_path):
    data = build_dataset(DataConfig(dataset="isbi2012-membrane", root=str(_fake(tmp_path))))
    assert data.class_names == ["membrane", "cell"]
    assert (len(data.train), len(data.val), data.test) == (20, 5, None)
    assert data.train.labels[0, 0].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    assert data.val.images[0, 0, 0, 0] == 60  # slice 20
    info = next(d for d in list_datasets() if d.name == "isbi2012-membrane")
    assert info.find(str(tmp_path))[1] == "present"


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(DataError, match="isbi2012-membrane: 50 file\\(s\\) missing.*never downloaded"):
        build_dataset(DataConfig(dataset="isbi2012-membrane", root=str(tmp_path)))


@pytest.mark.shared_data
def test_real_slices_when_present():
    if not (SHARED / "isbi2012-membrane").is_dir():
        pytest.skip("../shared/datasets/isbi2012-membrane is absent")
    data = build_dataset(DataConfig(dataset="isbi2012-membrane", root=str(SHARED), image_size=64))
    assert data.train.images.shape == (20, 1, 64, 64)
    membrane = data.train.class_counts(2)[0] / (20 * 64 * 64)
    assert 0.15 < membrane < 0.30  # about 22 % of the pixels are membrane (the README)
