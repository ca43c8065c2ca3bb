import pytest
import torch
from PIL import Image
from tests.conftest import make_image_folder, tiny_train_args

from cnnkit.cli import main
from cnnkit.tasks.gan.generate import generate, load_generator


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A one-epoch DCGAN run through `cnnkit train --task gan` (8 px grey images, width 4)."""
    tmp = tmp_path_factory.mktemp("gan")
    data = make_image_folder(tmp / "imgs", per_class=4, size=8, mode="L")
    args = [
        "train",
        "--task",
        "gan",
        "--data",
        str(data),
        "--image-size",
        "8",
        "--channels",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "4",
    ]
    args += ["--set", "gan.width=4", "--set", "gan.latent=6", "--runs-dir", str(tmp / "runs"), "--name", "g", "--quiet"]
    assert main(args) == 0
    return tmp / "runs" / "g"


@pytest.fixture(scope="module")
def classifier(gan_run):
    """A 4-wide simple_cnn on the same 8 px grey images (the judge of classifier-FID)."""
    data = gan_run.parents[1] / "imgs"
    assert main([*tiny_train_args(data, gan_run.parents[1] / "clf", image_size=8, epochs=1), "--channels", "1"]) == 0
    return next((gan_run.parents[1] / "clf").iterdir())


def test_generate_writes_images_and_a_grid(gan_run, tmp_path, capsys):
    assert main(["generate", str(gan_run), "--n", "5", "--out", str(tmp_path / "out"), "--seed", "2"]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["000000.png", "000001.png", "000002.png", "000003.png", "000004.png", "grid.png"]
    one = Image.open(tmp_path / "out" / "000003.png")
    assert one.size == (8, 8) and one.mode == "L"
    assert Image.open(tmp_path / "out" / "grid.png").size == (3 * 10 + 2, 2 * 10 + 2)  # 5 images: 3 columns, 2 rows
    assert "5 images (1x8x8)" in capsys.readouterr().out


def test_the_seed_decides_the_images(gan_run):
    g = load_generator(gan_run)
    a, b, c = generate(g, 4, seed=1), generate(g, 4, seed=1), generate(g, 4, seed=2)
    assert a.shape == (4, 1, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)


def test_generate_refuses_a_folder_without_a_gan_checkpoint(tmp_path, capsys):
    assert main(["generate", str(tmp_path), "--out", str(tmp_path / "o")]) != 0
    assert "no such checkpoint" in capsys.readouterr().err


def test_generate_scores_with_a_classifier(gan_run, classifier, tmp_path, capsys):
    import json

    out = tmp_path / "out"
    assert main(["generate", str(gan_run), "--n", "6", "--out", str(out), "--score", str(classifier)]) == 0
    q = json.loads((out / "quality.json").read_text())
    assert q["n_generated"] == 6 and q["fid"] > 0 and q["fid_real_floor"] >= 0 and q["fid_untrained_ceiling"] > 0
    assert list(q["class_shares"]) == ["cat", "dog"] and sum(q["class_shares"].values()) == pytest.approx(1.0)
    assert f"classifier-FID {q['fid']:.3f}" in capsys.readouterr().out
