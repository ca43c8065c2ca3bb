"""annotate.py and predict --save-images: each image with its top classes drawn below it."""

import shutil

import numpy as np
from PIL import Image

from cnnkit.annotate import LINE, annotate
from cnnkit.cli import main
from cnnkit.data.samples import samples_dir


def test_annotate_enlarges_small_images_and_adds_one_line_per_class():
    img = Image.fromarray(np.zeros((28, 28), np.uint8))
    out = np.asarray(annotate(img, ["3 90.0%", "8 5.0%", "5 1.0%"]))
    assert out.shape[1] >= 160 and out.shape[0] == 168 + 3 * LINE + 6  # 28 px x 6 = 168, then the text band
    band = out[168:]
    red = (band[..., 0] > 120) & (band[..., 1] < 60)
    ink_rows = np.nonzero((band < 100).all(-1).any(1))[0]
    assert red[: LINE + 3].any() and not red[LINE + 3 :].any()  # the top class in red, on the first line
    assert ink_rows.max() > 2 * LINE  # the third line is drawn


def test_predict_save_images_writes_one_png_per_image(tiny_run, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(samples_dir() / "3.png", other / "3.png")  # the same file name from two folders
    out = tmp_path / "annotated"
    assert (
        main(
            [
                "predict",
                str(tiny_run),
                str(samples_dir() / "3.png"),
                str(other / "3.png"),
                "--save-images",
                str(out),
                "--top-k",
                "2",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["3-2.png", "3.png"]
    assert "wrote 2 annotated images into" in capsys.readouterr().err
    with Image.open(out / "3.png") as im:
        assert im.size == (168, 168 + 2 * LINE + 6)
