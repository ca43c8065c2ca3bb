import json

import numpy as np
import onnxruntime
import torch

import cnnkit
from cnnkit.cli import main
from cnnkit.deploy.runtime import OnnxClassifier


def test_load_onnx_gives_the_checkpoints_predictions(tiny_onnx, tiny_run):
    onnx_clf, ckpt_clf = cnnkit.load(tiny_onnx), cnnkit.load(tiny_run)
    assert isinstance(onnx_clf, OnnxClassifier)
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a, b = onnx_clf.predict_proba(images), ckpt_clf.predict_proba(images)
    assert a.shape == (6, 10)
    assert torch.allclose(a, b, atol=1e-5)
    pa, pb = onnx_clf.predict(images, top_k=3), ckpt_clf.predict(images, top_k=3)
    assert [p.label for p in pa] == [p.label for p in pb]
    assert type(pa[0]) is type(pb[0]) and len(pa[0].top_k) == 3


def test_same_preprocessing_for_a_colour_file(tiny_onnx, tiny_run, tmp_path):
    """An RGB 40x30 picture is converted to gray and resized exactly as for the checkpoint."""
    from PIL import Image

    rng = np.random.default_rng(1)
    f = tmp_path / "x.png"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(f)
    ra, rb = cnnkit.load(tiny_onnx).predict_files([f]), cnnkit.load(tiny_run).predict_files([f])
    assert ra.predictions[0].label == rb.predictions[0].label
    assert abs(ra.predictions[0].probability - rb.predictions[0].probability) < 1e-5


def test_dynamic_batch_axis(tiny_onnx):
    sess = onnxruntime.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    for n in (1, 5):
        assert sess.run(None, {"input": np.zeros((n, 1, 28, 28), np.float32)})[0].shape == (n, 10)


def test_cli_predict_onnx_equals_checkpoint(tiny_onnx, tiny_run, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(tmp_path / "a.png")
    outs = []
    for model in (tiny_run, tiny_onnx):
        assert main(["predict", str(model), str(tmp_path / "a.png"), "--format", "json"]) == 0
        outs.append(json.loads(capsys.readouterr().out)["predictions"][0])
    assert outs[0]["label"] == outs[1]["label"]
    assert abs(outs[0]["probability"] - outs[1]["probability"]) < 1e-5
