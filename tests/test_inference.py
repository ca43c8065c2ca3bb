import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit
from cnnkit.config import DataConfig
from cnnkit.data import build_dataset


@pytest.fixture(scope="module")
def digits():
    ds = build_dataset(DataConfig(), seed=0)
    return ds.test.images[:8], ds.test.labels[:8]


def test_all_input_kinds_give_the_same_answer(tiny_run, digits, tmp_path):
    clf = cnnkit.load(tiny_run)
    images, _ = digits
    arr = images[0, 0].numpy()  # (28, 28) uint8
    path = tmp_path / "d.png"
    Image.fromarray(arr).save(path)
    ref = clf.predict_proba(arr)
    for form in (
        path,
        str(path),
        Image.fromarray(arr),
        arr[..., None],
        arr.astype(np.float32) / 255,
        images[0],
        images[0].float() / 255,
    ):
        torch.testing.assert_close(clf.predict_proba(form), ref, atol=1e-5, rtol=0)
    batch = clf.predict(images)
    assert len(batch) == 8 and batch[0].label == clf.predict(arr)[0].label
    p = batch[0]
    assert p.top_k[0] == (p.label, p.probability) and len(p.top_k) == 5
    assert sum(prob for _, prob in clf.predict(arr, top_k=10)[0].top_k) == pytest.approx(1.0, abs=1e-5)


def test_rgb_photo_on_a_grayscale_model(tiny_run, digits, tmp_path):
    clf = cnnkit.load(tiny_run)
    gray = digits[0][0, 0].numpy()
    rgb = Image.fromarray(np.stack([gray] * 3, -1)).resize((56, 56))  # RGB and a different size
    rgb.save(tmp_path / "big.jpg", quality=100)
    assert clf.preprocess(tmp_path / "big.jpg").shape == (1, 1, 28, 28)
    assert clf.predict(rgb)[0].label in clf.class_names


def test_unreadable_file_is_reported_and_others_predicted(tiny_run, digits, tmp_path):
    clf = cnnkit.load(tiny_run)
    for i in range(3):
        Image.fromarray(digits[0][i, 0].numpy()).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    report = clf.predict_files([tmp_path])
    assert sorted(p.source.rsplit("/", 1)[1] for p in report.predictions) == ["0.png", "1.png", "2.png"]
    assert len(report.errors) == 1 and report.errors[0][0].endswith("broken.png")


def test_predictions_match_evaluation(tiny_run, digits):
    from cnnkit.checkpoint import load_checkpoint

    clf = cnnkit.load(tiny_run)
    images, _ = digits
    ckpt = load_checkpoint(tiny_run / "best.ckpt")
    mean = torch.tensor(ckpt["input"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(ckpt["input"]["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        direct = torch.softmax(clf.model((images.float() / 255 - mean) / std), 1)
    torch.testing.assert_close(clf.predict_proba(images), direct, atol=1e-5, rtol=1e-4)


def test_bad_input_type(tiny_run):
    with pytest.raises(TypeError, match="cannot predict on a dict"):
        cnnkit.load(tiny_run).predict([{"x": 1}])


def test_load_hands_registered_suffixes_to_their_loader(tmp_path, monkeypatch):
    from cnnkit.errors import CheckpointError
    from cnnkit.inference import classifier as inference

    assert inference._loader_for("model.ONNX").__module__ == "cnnkit.deploy.runtime"  # imported on first use
    seen = []
    monkeypatch.setattr(inference, "_LOADERS", dict(inference._LOADERS))
    inference.register_loader(".FAKE", lambda path, device: seen.append((str(path), device)) or "a classifier")
    assert inference.load(tmp_path / "m.fake", device="cuda") == "a classifier"
    assert seen == [(str(tmp_path / "m.fake"), "cuda")]
    with pytest.raises(CheckpointError, match="missing.ckpt"):  # no loader for .ckpt: read as a checkpoint
        inference.load(tmp_path / "missing.ckpt")


def test_predict_resizes_with_the_checkpoints_interpolation(tiny_run, tmp_path):
    """A checkpoint records the resize's filter of training (data.interpolation: bicubic for Lite0's
    weights); predict repeats it, for images in memory and for files alike."""
    from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from cnnkit.data.images import pil_to_array
    from cnnkit.inference import Classifier

    ckpt = load_checkpoint(resolve_checkpoint(tiny_run))
    assert ckpt["input"]["interpolation"] == "bilinear"  # the default, recorded
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (57, 41), dtype=np.uint8))  # resized to 28 x 28
    img.save(tmp_path / "x.png")
    ckpt["input"]["interpolation"] = "bicubic"
    clf = Classifier(model_from_checkpoint(ckpt), ckpt)
    x = clf.preprocess(img)[0].numpy()
    assert np.array_equal(x, pil_to_array(img, 1, (28, 28), "bicubic"))
    assert not np.array_equal(x, pil_to_array(img, 1, (28, 28), "bilinear"))
    from_file = clf.predict_files([tmp_path / "x.png"]).predictions[0]
    bicubic = clf.predict(torch.from_numpy(pil_to_array(img, 1, (28, 28), "bicubic")))[0]
    bilinear = clf.predict(torch.from_numpy(pil_to_array(img, 1, (28, 28), "bilinear")))[0]
    probs = [p for _, p in from_file.top_k]
    assert [c for c, _ in from_file.top_k] == [c for c, _ in bicubic.top_k]
    assert probs == pytest.approx([p for _, p in bicubic.top_k], abs=1e-6)
    assert probs != pytest.approx([p for _, p in bilinear.top_k], abs=1e-6)
