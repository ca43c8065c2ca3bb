"""Feature maps, filters and the explain / featuremaps / filters commands on the tiny run."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit.cli import main
from cnnkit.errors import ConfigError
from cnnkit.explain.featuremaps import default_layers, expand_steps, feature_maps
from cnnkit.explain.filters import kernel_images, maximize_activation
from cnnkit.models import create_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("simple_cnn", num_classes=3, in_chans=1, width=4, stages=3, depth=1).eval()


def test_feature_map_shapes_per_stage(model):
    maps = feature_maps(model, torch.randn(1, 1, 28, 28))
    assert [(m.name, m.shape) for m in maps] == [
        ("features.stage0", (4, 14, 14)),
        ("features.stage1", (8, 7, 7)),
        ("features.stage2", (16, 7, 7)),
    ]
    assert default_layers(model) == ["features.stage0", "features.stage1", "features.stage2"]


def test_steps_show_relu_and_pooling_before_and_after(model):
    names = expand_steps(model, ["features.stage0"])
    assert names == ["features.stage0.0", "features.stage0.1", "features.stage0.2", "features.stage0.3"]
    conv, bn, relu, pool = feature_maps(model, torch.randn(1, 1, 12, 12), names)
    assert [m.kind for m in (conv, bn, relu, pool)] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert (bn.output < 0).any()  # recorded before the in-place ReLU overwrote it
    torch.testing.assert_close(relu.output, bn.output.clamp_min(0))
    torch.testing.assert_close(pool.output, F.max_pool2d(relu.output[None], 2)[0])
    assert pool.shape == (4, 6, 6)


def test_unknown_layer_is_named(model):
    with pytest.raises(ConfigError, match="no layer 'features.nope'"):
        feature_maps(model, torch.zeros(1, 1, 8, 8), ["features.nope"])


def test_kernel_images_keep_sign_and_colour():
    conv = torch.nn.Conv2d(3, 2, 3)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 2.0  # red, positive
        conv.weight[1, 2, 1, 1] = -0.5  # blue, negative
    pics = kernel_images(conv)
    assert pics.shape == (2, 3, 3, 3)
    assert pics[0, 0, 0].tolist() == [1.0, 0.5, 0.5] and pics[0, 2, 2].tolist() == [0.5, 0.5, 0.5]
    assert pics[1, 1, 1].tolist() == [0.5, 0.5, 0.0]
    assert kernel_images(torch.nn.Conv2d(1, 5, 5)).shape == (5, 5, 5)


def test_activation_maximisation_excites_the_channel(model):
    x, start, end = maximize_activation(model, "features.stage1", [0, 1, 2], (1, 16, 16), steps=40)
    assert x.shape == (3, 1, 16, 16)
    assert (end > start + 0.1).all(), (start, end)
    with torch.no_grad():  # beats random images of the same size
        store = {}
        h = dict(model.named_modules())["features.stage1"].register_forward_hook(
            lambda m, i, o: store.__setitem__("o", o)
        )
        model(torch.randn(16, 1, 16, 16))
        h.remove()
        random_best = store["o"][:, :3].flatten(2).mean(2).max(0).values
    assert (end > random_best).all()
    assert all(p.requires_grad for p in model.parameters())  # the model is left as it was


@pytest.fixture(scope="module")
def digit_files(tiny_run, tmp_path_factory):
    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    root = tmp_path_factory.mktemp("digits")
    ds = build_dataset(DataConfig(), seed=0)
    for i in range(4):
        d = root / str(int(ds.test.labels[i]))
        d.mkdir(exist_ok=True)
        Image.fromarray(ds.test.images[i, 0].numpy()).save(d / f"{i}.png")
    (root / "broken.png").write_bytes(b"not a png")
    return root


def test_explain_command_writes_panels_and_contact_sheet(tiny_run, digit_files, tmp_path, capsys):
    out = tmp_path / "gc"
    rc = main(["explain", str(tiny_run), str(digit_files), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 1  # one unreadable file is reported, the others are explained
    assert "could not read" in printed and "broken.png" in printed
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 5 and "contact_sheet.png" in pngs
    with Image.open(out / "contact_sheet.png") as im:
        assert im.width > 400
    with Image.open(next(p for p in out.glob("*.png") if p.name != "contact_sheet.png")) as im:
        assert im.width > 2.2 * im.height  # three panels side by side
    assert printed.count("(explained: ") == 4


def test_explain_class_and_layer_options(tiny_run, digit_files, tmp_path, capsys):
    one = next(digit_files.glob("*/*.png"))
    out = tmp_path / "x"
    assert (
        main(
            [
                "explain",
                str(tiny_run),
                str(one),
                "--method",
                "gradcam++",
                "--layer",
                "features.stage0",
                "--class",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "(explained: 3)" in capsys.readouterr().out
    assert len(list(out.glob("*.png"))) == 1  # no contact sheet for one image
    assert main(["explain", str(tiny_run), str(one), "--class", "cat"]) == 2
    assert "--class 'cat' is not one of the model's classes: 0, 1, 2" in capsys.readouterr().err
    assert main(["explain", str(tiny_run), str(one), "--layer", "fc9"]) == 2
    assert "no layer 'fc9'" in capsys.readouterr().err


def test_explain_defaults_into_the_run_folder(tiny_run, digit_files, capsys):
    one = next(digit_files.glob("*/*.png"))
    assert main(["explain", str(tiny_run), str(one), "--method", "saliency"]) == 0
    assert len(list((tiny_run / "explain" / "saliency").glob("*.png"))) == 1


def test_featuremaps_and_filters_commands(tiny_run, digit_files, tmp_path, capsys):
    one = next(digit_files.glob("*/*.png"))
    assert main(["featuremaps", str(tiny_run), str(one), "--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["features.stage0", "Sequential", "4x14x14"]
    assert (
        main(
            [
                "featuremaps",
                str(tiny_run),
                str(one),
                "--steps",
                "--layers",
                "features.stage0",
                "--out",
                str(tmp_path / "fm"),
            ]
        )
        == 0
    )
    written = sorted(p.name for p in (tmp_path / "fm").glob("*.png"))
    assert written == [
        "00_features_stage0_0.png",
        "01_features_stage0_1.png",
        "02_features_stage0_2.png",
        "03_features_stage0_3.png",
    ]
    assert main(["filters", str(tiny_run), "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "first_layer_kernels.png").is_file()
    assert (
        main(
            [
                "filters",
                str(tiny_run),
                "--layer",
                "features.stage1",
                "--channels",
                "4",
                "--steps",
                "10",
                "--out",
                str(tmp_path / "f"),
            ]
        )
        == 0
    )
    assert "rose from" in capsys.readouterr().out
    assert (tmp_path / "f" / "features_stage1_activation_max.png").is_file()
