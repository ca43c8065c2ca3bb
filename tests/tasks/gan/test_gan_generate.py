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


@pytest.fixture(scope="module")
def conditional_run(gan_run):
    """A one-epoch class-conditional DCGAN (--conditional) on the same images (cat, dog)."""
    tmp = gan_run.parents[1]
    args = ["train", "--task", "gan", "--conditional", "--data", str(tmp / "imgs"), "--image-size", "8"]
    args += ["--channels", "1", "--epochs", "1", "--batch-size", "4", "--set", "gan.width=4", "--set", "gan.latent=6"]
    assert main([*args, "--runs-dir", str(tmp / "runs"), "--name", "c", "--quiet"]) == 0
    return tmp / "runs" / "c"


def test_a_conditional_run_generates_the_class_asked(conditional_run, tmp_path, capsys):
    g = load_generator(conditional_run)
    assert g.num_classes == 2 and g.class_names == ["cat", "dog"]
    z = torch.randn(3, 6, generator=torch.Generator().manual_seed(4))
    from cnnkit.tasks.gan.run import sample

    assert torch.equal(generate(g, 3, seed=4, cls=1), sample(g, z, torch.tensor([1, 1, 1])))
    assert torch.equal(generate(g, 3, seed=4), sample(g, z, torch.tensor([0, 1, 0])))  # default: classes in turn
    assert Image.open(conditional_run / "samples" / "epoch_001.png").size == (
        2 * 10 + 2,
        32 * 10 + 2,
    )  # a class a column
    assert main(["generate", str(conditional_run), "--n", "3", "--out", str(tmp_path / "all")]) == 0
    assert Image.open(tmp_path / "all" / "grid.png").size == (2 * 10 + 2, 2 * 10 + 2)  # cat, dog / cat
    assert main(["generate", str(conditional_run), "--n", "3", "--class", "dog", "--out", str(tmp_path / "o")]) == 0
    assert main(["generate", str(conditional_run), "--n", "3", "--class", "7", "--out", str(tmp_path / "o")]) != 0
    assert "--class 7: not a class of this run; give 0-1 or one of ['cat', 'dog']" in capsys.readouterr().err


def test_class_on_an_unconditional_run_is_refused(gan_run, tmp_path, capsys):
    assert main(["generate", str(gan_run), "--class", "1", "--out", str(tmp_path / "o")]) != 0
    assert "--class: this GAN run is not class-conditional" in capsys.readouterr().err


def test_conditional_mode_coverage_is_the_asked_class_share(conditional_run, classifier, tmp_path):
    import json

    from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from cnnkit.tasks.gan.fid import classifier_features
    from cnnkit.tasks.gan.grid import to_uint8

    out = tmp_path / "out"
    argv = ["generate", str(conditional_run), "--n", "12", "--class", "1", "--out", str(out), "--score"]
    assert main([*argv, str(classifier)]) == 0
    q = json.loads((out / "quality.json").read_text())
    assert q["asked_class_share"] == pytest.approx(q["class_shares"]["dog"])  # every image was asked to be a dog
    clf = load_checkpoint(resolve_checkpoint(classifier))
    images = to_uint8(generate(load_generator(conditional_run), 12, seed=0, cls=1))
    _, preds = classifier_features(model_from_checkpoint(clf), images, clf["input"]["mean"], clf["input"]["std"])
    assert q["asked_class_share"] == pytest.approx((preds == 1).double().mean().item())


def test_slerp_keeps_the_endpoints_and_the_sphere():
    from cnnkit.tasks.gan.generate import slerp

    z0, z1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    assert path.shape == (1, 5, 2) and torch.equal(path[0, 0], z0[0]) and torch.equal(path[0, -1], z1[0])
    assert torch.allclose(path[0, 2], torch.tensor([0.5**0.5, 2 * 0.5**0.5]))  # halfway: 45 degrees


def test_interpolate_walks_from_g_z0_to_g_z1(gan_run, tmp_path, capsys):
    from cnnkit.tasks.gan.generate import interpolate
    from cnnkit.tasks.gan.run import sample

    g = load_generator(gan_run)
    images, ends = interpolate(g, walks=2, frames=5, seed=3)
    assert images.shape == (10, 1, 8, 8) and ends.shape == (2, 2, 6)
    first, last = sample(g, ends[0]), sample(g, ends[1])
    assert torch.allclose(images[0], first[0], atol=1e-6) and torch.allclose(images[4], last[0], atol=1e-6)
    assert torch.allclose(images[5], first[1], atol=1e-6) and torch.allclose(images[9], last[1], atol=1e-6)
    assert not torch.allclose(images[2], images[0])
    argv = ["generate", str(gan_run), "--interpolate", "--n", "2", "--frames", "5", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "w")]) == 0
    assert Image.open(tmp_path / "w" / "interpolation.png").size == (5 * 10 + 2, 2 * 10 + 2)  # 5 columns, 2 rows
    assert "2 walks of 5 steps (slerp" in capsys.readouterr().out


def test_score_with_writes_quality_into_the_run(gan_run, classifier):
    import json

    from tests.tasks.gan.test_gan_run import tiny_cfg

    from cnnkit.training.trainer import train

    tmp = gan_run.parents[1]
    cfg = tiny_cfg(tmp, epochs=2, name="scored", score_with=str(classifier), score_n=10, score_every=1).with_overrides(
        {"data.path": str(tmp / "imgs"), "data.channels": 1}
    )
    run = train(cfg, quiet=True)
    q = json.loads((run.dir / "quality.json").read_text())
    assert q["n_generated"] == 10 and q["fid"] > 0 and list(q["class_shares"]) == ["cat", "dog"]
    assert [h["epoch"] for h in q["history"]] == [1, 2] and q["epoch"] == 2 and q["history"][-1]["fid"] == q["fid"]
    page = (run.dir / "report.html").read_text()
    assert f"<b>FID {q['fid']:.3f}</b>" in page and "untrained generator" in page
    assert f"Classifier-FID by epoch: 1: {q['history'][0]['fid']:.3f}, 2: {q['fid']:.3f}." in page


def test_score_with_a_missing_classifier_fails_before_training(tmp_path):
    from tests.tasks.gan.test_gan_run import tiny_cfg

    from cnnkit.errors import CnnkitError
    from cnnkit.training.trainer import train

    with pytest.raises(CnnkitError, match="nope"):
        train(tiny_cfg(tmp_path, score_with=str(tmp_path / "nope")), quiet=True)
    assert not (tmp_path / "runs" / "a").exists()
