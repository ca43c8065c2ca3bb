import json

import pytest

from cnnkit.cli import main
from cnnkit.deploy.metadata import read_metadata
from cnnkit.deploy.quantize import QuantizationError, quantize
from cnnkit.errors import CnnkitError


@pytest.fixture
def exported(run_copy):
    from cnnkit.deploy.export import export_checkpoint

    return export_checkpoint(run_copy, exporter="torchscript", images=8).path


def test_static_int8_with_accuracy_before_and_after(exported):
    r = quantize(
        exported, mode="static", calib=16, test_images=100, max_drop=100
    )  # the gate has its own test: tiny_run is barely trained
    assert r.path == exported.with_name("model.int8.onnx") and r.path.is_file()
    rep = json.loads(r.report_path.read_text())
    assert rep["mode"] == "static" and rep["format"] == "QDQ" and rep["per_channel"] is True
    assert rep["calibration"] == "train split" and rep["calibration_images"] == 16
    assert rep["test_images"] == 100 and 0 <= rep["accuracy_int8"] <= 1
    assert rep["drop_points"] == pytest.approx(100 * (rep["accuracy_fp32"] - rep["accuracy_int8"]))
    meta = read_metadata(r.path)  # the int8 file still predicts on its own
    assert meta["quantization"]["mode"] == "static" and meta["class_names"] == read_metadata(exported)["class_names"]
    import cnnkit

    assert (
        len(cnnkit.load(r.path).predict(__import__("torch").zeros(2, 1, 28, 28, dtype=__import__("torch").uint8))) == 2
    )


def test_dynamic_int8(exported):
    r = quantize(exported, mode="dynamic", test_images=50, max_drop=100)
    assert (
        r.path.name == "model.int8-dynamic.onnx" and r.report["format"] == "QOperator" and r.report["test_images"] == 50
    )


def test_the_accuracy_gate_fires_with_both_numbers(exported, monkeypatch, capsys):
    import cnnkit.deploy.quantize as q

    monkeypatch.setattr(q, "onnx_accuracy", lambda path, *a, **k: 0.85 if "int8" in path.name else 0.90)
    with pytest.raises(QuantizationError, match=r"a drop of 5\.00 points exceeds --max-drop 1"):
        quantize(exported, mode="static", calib=8, test_images=50)
    code = main(["quantize", str(exported), "--calib", "8", "--max-drop", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "int8 test accuracy" in out and "vs fp32" in out


def test_an_int8_file_is_not_quantized_again(exported):
    r = quantize(exported, mode="dynamic", test_images=0)
    with pytest.raises(CnnkitError, match="already quantized"):
        quantize(r.path)
