import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import make_image_folder

from cnnkit.cli import main
from cnnkit.config import AugmentConfig
from cnnkit.data.augment import BatchAugment
from cnnkit.data.commands import preview_grid
from cnnkit.data.presets import PRESETS, apply_preset, preset_overrides
from cnnkit.errors import ConfigError


@pytest.mark.parametrize("name", PRESETS)
def test_digits_never_get_flips(name):
    cfg = apply_preset(AugmentConfig(), name, dataset="mnist", image_size=28)
    assert not cfg.hflip and not cfg.vflip and cfg.hue == 0


def test_presets_grow_stronger_for_photos():
    none = apply_preset(AugmentConfig(), "none", dataset="cifar10", image_size=32)
    assert not BatchAugment.from_config(none).active
    light = preset_overrides("light", dataset="cifar10", image_size=32)
    assert light["hflip"] and light["translate"] == 4
    strong = preset_overrides("strong", dataset="folder", image_size=64)
    assert strong["auto"] == "trivialaugment" and strong["crop_scale"] == 0.35 and strong["mixup"] == 0.0
    with pytest.raises(ConfigError, match="did you mean 'strong'"):
        preset_overrides("strongg", dataset="cifar10", image_size=32)


def test_preview_grid_layout():
    images = torch.stack([torch.full((1, 2, 2), 10 * (i + 1), dtype=torch.uint8) for i in range(3)])
    full = preview_grid(images, lambda x, g: 255 - x, versions=2, generator=None, scale=2, gap=1)
    grid = full[14:]  # below the 14-pixel header band that names the columns
    assert full.shape == (14 + 3 * 5 + 1, 3 * 5 + 1, 3)
    assert (grid[1:5, 1:5] == 10).all() and (grid[1:5, 6:10] == 245).all() and (grid[11:15, 11:15] == 225).all()
    assert (grid[0] == 255).all()  # the gap is white


def test_augment_preview_command_writes_png(tmp_path, capsys):
    root = make_image_folder(tmp_path / "imgs", per_class=4, size=10)
    out = tmp_path / "p.png"
    assert (
        main(
            [
                "augment-preview",
                "--data",
                str(root),
                "--image-size",
                "10",
                "--augment",
                "light",
                "--rows",
                "3",
                "--versions",
                "2",
                "--out",
                str(out),
                "--set",
                "augment.rotate=20",
            ]
        )
        == 0
    )
    img = np.asarray(Image.open(out))
    assert (
        img.shape == (14 + 2 + 3 * (30 + 2), 2 + 3 * (30 + 2), 3)
        and "the original in the first column" in capsys.readouterr().out
    )
    assert main(["augment-preview", "--data", str(root), "--set", "optim.lr=1", "--out", str(out)]) == 2
    assert "expected augment.KEY=VALUE" in capsys.readouterr().err


def test_augment_preview_labels_the_originals_and_defaults_to_a_runs_folder(tmp_path, capsys):
    root = make_image_folder(tmp_path / "imgs", per_class=4, size=28)
    assert (
        main(
            [
                "augment-preview",
                "--data",
                str(root),
                "--image-size",
                "28",
                "--augment",
                "light",
                "--rows",
                "2",
                "--versions",
                "2",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("augment-preview-imgs-light-") and [p.name for p in folder.iterdir()] == [
        "augment_preview.png"
    ]
    img = np.asarray(Image.open(folder / "augment_preview.png"))
    header = img[:14]
    red = (header[..., 0] > 150) & (header[..., 1] < 80)
    cols = np.nonzero(red.any(0))[0]
    assert len(cols) and cols.max() < 2 + 84  # the red "original" label sits over the first column only
    assert (header[:, 2 + 84 + 2 :] < 100).any()  # the other columns are labelled (in black)
