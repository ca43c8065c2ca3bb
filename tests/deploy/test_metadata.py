import json

import pytest
import torch

from cnnkit.deploy.metadata import FORMAT, OnnxFileError, read_metadata
from cnnkit.deploy.runtime import OnnxClassifier


def test_metadata_round_trip(tiny_onnx, tiny_run):
    from cnnkit.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_run / "best.ckpt")
    meta = read_metadata(tiny_onnx)
    assert meta["format"] == FORMAT
    assert meta["class_names"] == ckpt["class_names"]
    assert meta["input"] == ckpt["input"]
    assert meta["model"] == ckpt["model"]
    assert meta["task"] == "single_label"
    assert meta["exporter"] == "torchscript" and meta["opset"] == 18
    assert meta["cnnkit_version"] == __import__("cnnkit").__version__


def test_a_plain_onnx_file_is_refused_by_name(tmp_path):
    path = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.randn(1, 3),), str(path), dynamo=False)
    with pytest.raises(OnnxFileError, match=r"foreign\.onnx: an ONNX file without cnnkit metadata"):
        OnnxClassifier(path)


def test_a_corrupt_file_is_refused_by_name(tmp_path, tiny_onnx):
    path = tmp_path / "broken.onnx"
    path.write_bytes(tiny_onnx.read_bytes()[:300])
    with pytest.raises(OnnxFileError, match=r"broken\.onnx: not a readable ONNX file"):
        OnnxClassifier(path)


def test_missing_file(tmp_path):
    with pytest.raises(OnnxFileError, match="not found"):
        read_metadata(tmp_path / "none.onnx")


def test_bad_metadata_values_are_named(tmp_path, tiny_onnx):
    import onnx

    proto = onnx.load(str(tiny_onnx))
    for p in proto.metadata_props:
        if p.key == "cnnkit.input":
            p.value = json.dumps({"channels": 1, "size": [28, 28], "mean": [0.1], "std": [0.0]})
    path = tmp_path / "tampered.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(OnnxFileError, match=r"tampered\.onnx: cnnkit metadata input\.std must be positive"):
        read_metadata(path)


def test_the_resize_filter_travels_with_the_onnx_file(tmp_path, tiny_onnx):
    import onnx

    from cnnkit.deploy.runtime import OnnxClassifier

    assert read_metadata(tiny_onnx)["input"]["interpolation"] == "bilinear"  # copied from the checkpoint
    assert OnnxClassifier(tiny_onnx).interpolation == "bilinear"  # predict resizes as training did
    proto = onnx.load(str(tiny_onnx))
    for p in proto.metadata_props:
        if p.key == "cnnkit.input":
            p.value = json.dumps({**json.loads(p.value), "interpolation": "cubic"})
    path = tmp_path / "tampered.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(OnnxFileError, match=r"tampered\.onnx: cnnkit metadata input\.interpolation is 'cubic'"):
        read_metadata(path)
