"""background.py and predict --invert: a dark-background (MNIST) model warns about light-background
images and inverts them with --invert auto; the sample digits ship with the package."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.background import fix_background, light_background, trained_on_dark
from cnnkit.cli import main
from cnnkit.data.samples import samples_dir


def test_light_background_and_training_polarity():
    x = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    x[1] = 255
    x[2, :, 6:22, 6:22] = 255  # a bright digit in the middle, dark border
    assert light_background(x).tolist() == [False, True, False]
    dark = {"input": {"channels": 1, "mean": [0.13]}}
    assert trained_on_dark(dark) and not trained_on_dark({"input": {"channels": 3, "mean": [0.1, 0.1, 0.1]}})
    y, mismatched, inverted = fix_background(x, "auto", dark)
    assert mismatched.tolist() == [False, True, False] and inverted.tolist() == [False, True, False]
    assert int(y[1].max()) == 0 and torch.equal(y[2], x[2])
    assert fix_background(x, "yes", dark)[2].all() and not fix_background(x, "no", dark)[2].any()
    assert not fix_background(x, "auto", {"input": {"channels": 1, "mean": [0.8]}})[
        1
    ].any()  # a light-background model: nothing to fix


def test_samples_ship_with_the_package(capsys):
    files = sorted(p.name for p in samples_dir().glob("*.png"))
    assert files == [f"{d}.png" for d in range(7)] + ["7-on-white.png", "7.png", "8.png", "9.png"]
    assert main(["samples"]) == 0 and capsys.readouterr().out.strip() == str(samples_dir())
    assert main(["samples", "--list"]) == 0 and len(capsys.readouterr().out.split()) == 11
    dark = np.asarray(Image.open(samples_dir() / "7.png"))
    light = np.asarray(Image.open(samples_dir() / "7-on-white.png"))
    assert dark.shape == light.shape == (28, 28) and dark[0].mean() < 20 and light[0].mean() > 235


def test_predict_warns_once_and_invert_auto_matches_the_dark_original(tiny_run, tmp_path, capsys):
    dark = samples_dir() / "3.png"
    light = tmp_path / "3-on-white.png"
    Image.fromarray(255 - np.asarray(Image.open(dark))).save(light)
    assert (
        main(
            ["predict", str(tiny_run), str(dark), str(light), str(samples_dir() / "7-on-white.png"), "--format", "json"]
        )
        == 0
    )
    cap = capsys.readouterr()
    assert cap.err.count("warning") == 1 and "2 images (e.g." in cap.err and "--invert auto" in cap.err
    assert main(["predict", str(tiny_run), str(dark), str(light), "--format", "json", "--invert", "auto"]) == 0
    cap = capsys.readouterr()
    assert "warning" not in cap.err
    a, b = json.loads(cap.out)["predictions"]
    assert a["top_k"] == b["top_k"]  # the inverted light image is exactly the dark original
    with pytest.raises(SystemExit):
        main(["predict", str(tiny_run), str(dark), "--invert", "maybe"])
