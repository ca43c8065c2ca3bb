import json

import pytest
import torch

from cnnkit.cli import main
from cnnkit.deploy.backends import NAMES
from cnnkit.deploy.bench import bench_infer, table
from cnnkit.training.device import native_bf16


def test_bench_infer_lists_every_backend_or_its_reason(run_copy, monkeypatch):
    import cnnkit.deploy.backends as backends

    monkeypatch.setattr(
        torch, "compile", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no compiler here"))
    )  # guarded: a row with the reason
    r = bench_infer(run_copy, threads=1, batch=8, images=40, repeats=3, budget_s=0.2, exporter="torchscript")
    rows = {row["backend"]: row for row in r["rows"]}
    assert list(rows) == list(NAMES)
    assert (
        rows["compile"]["available"] is False
        and "torch.compile failed: RuntimeError: no compiler here" in rows["compile"]["reason"]
    )
    assert rows["bf16"]["available"] is native_bf16(torch.device("cpu"))
    for name in ("eager", "channels-last", "onnxruntime", "onnxruntime-int8"):
        row = rows[name]
        assert (
            row["available"]
            and row["latency_ms_p50"] > 0
            and row["latency_ms_p95"] >= row["latency_ms_p50"]
            and row["throughput_img_s"] > 0
        )
        assert 0 <= row["accuracy"] <= 1
    assert rows["eager"]["accuracy"] == rows["channels-last"]["accuracy"] == rows["onnxruntime"]["accuracy"]
    int8 = rows["torch-int8"]  # the tiny run's simple_cnn traces: torch.ao int8 runs, with its parity vs eager
    assert int8["available"] and int8["parity_vs_eager"]["images"] == 40
    # a near-chance model's logits lie close together, so int8 flips some top-1s; the trained CIFAR / MNIST numbers are in benchmarks/
    assert (
        int8["parity_vs_eager"]["top1_agreement"] >= 0.75 and abs(int8["accuracy"] - rows["eager"]["accuracy"]) <= 0.1
    )
    saved = json.loads((run_copy / "export" / "bench_infer.json").read_text())
    assert (
        saved["threads"] == 1
        and saved["batch"] == 8
        and saved["test_images"] == 40
        and "load_average" in saved["machine"]
    )
    text = table(r)
    assert all(name in text for name in NAMES) and "unavailable: torch.compile failed" in text
    assert backends.NAMES == NAMES


def test_bench_infer_on_an_onnx_file_alone(tiny_onnx, tmp_path):
    import onnx

    proto = onnx.load(str(tiny_onnx))
    for p in proto.metadata_props:
        if p.key == "cnnkit.checkpoint":
            p.value = json.dumps(str(tmp_path / "gone.ckpt"))  # the checkpoint it came from is not at hand
    alone = tmp_path / "alone.onnx"
    onnx.save(proto, str(alone))
    r = bench_infer(
        alone,
        threads=1,
        batch=4,
        backends=["eager", "onnxruntime"],
        images=10,
        repeats=3,
        budget_s=0.1,
        out=tmp_path / "b.json",
    )
    rows = {row["backend"]: row for row in r["rows"]}
    assert rows["onnxruntime"]["available"] and not rows["eager"]["available"]
    assert "PyTorch backends need the checkpoint" in rows["eager"]["reason"]


def test_cli_bench_infer_unknown_backend(run_copy, capsys):
    assert main(["bench-infer", str(run_copy), "--backends", "tensorrt"]) != 0
    assert "--backends: unknown tensorrt" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["channels-last", "onnxruntime"])
def test_predict_backend_gives_the_same_labels(run_copy, tmp_path, capsys, backend):
    import numpy as np
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    outs = []
    for b in ("eager", backend):
        assert main(["predict", str(run_copy), str(tmp_path), "--format", "json", "--backend", b]) == 0
        outs.append(json.loads(capsys.readouterr().out)["predictions"])
    assert [p["label"] for p in outs[0]] == [p["label"] for p in outs[1]]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(*outs)) < 1e-4


def test_predict_backend_torch_on_onnx_is_refused(tiny_onnx, tmp_path, capsys):
    assert main(["predict", str(tiny_onnx), str(tmp_path), "--backend", "bf16"]) != 0
    assert "runs with --backend onnxruntime" in capsys.readouterr().err
