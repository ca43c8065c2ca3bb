import json
import warnings

import pytest
import torch

from cnnkit.cli import main
from cnnkit.data.preprocess import Normalize
from cnnkit.deploy.export import export_checkpoint
from cnnkit.deploy.onnx_export import export_model
from cnnkit.deploy.parity import check_parity, compare_logits
from cnnkit.models import create_model, list_models
from cnnkit.models._registry import accepts

# the registry at small inputs: 32 px with the small-input stem where a model has one; these are
# the ones whose export + onnxruntime run takes more than a few seconds on 2 busy cores
HEAVY = {
    "convnext_tiny",
    "densenet121",
    "resnet34",
    "resnet50",
    "vgg16",
    "vgg16_bn",
    "googlenet",
    "efficientnet_b0",
    "efficientnet_lite0",
    "mobilenet_v3_large",
    "alexnet",
    "vit_tiny",  # 365 MMACs at 32 px, ~20 s to export and compare on 2 cores
    "vit_tiny_224",  # 12 blocks on 2x2 patches at 32 px: cheap to run, ~20 s to trace and export
}
# models that cannot be exported, with the reason (none today: keep the list honest if one appears)
CANNOT: dict[str, str] = {}
# the TorchScript exporter cannot express these at 32 px (adaptive pooling to a size that does not divide
# the input): `--exporter auto` (the default) uses dynamo for them, and so does this test
NEEDS_DYNAMO = {"alexnet"}


def _meta(name: str, channels: int, size: int) -> dict:
    return {
        "format": "cnnkit.onnx/1",
        "class_names": [str(i) for i in range(5)],
        "input": {"channels": channels, "size": [size, size], "mean": [0.5] * channels, "std": [0.25] * channels},
        "task": "single_label",
        "model": {"name": name, "kwargs": {}},
    }


def _registry_case(name: str, tmp_path, exporter: str = "torchscript"):
    kwargs = {"small_input": True} if accepts(name, "small_input") else {}
    channels, size = (1, 28) if name in ("lenet5", "simple_cnn", "spec", "fastnet_t") else (3, 32)
    if name == "lenet5" or name.startswith("vit_"):  # built at the data's size, as cnnkit train builds them
        kwargs["image_size"] = size  # (a ViT's position embedding resized at run time is bicubic+antialias: no ONNX op)
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_chans=channels, **kwargs).eval()
    meta = _meta(name, channels, size)
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        used = export_model(model, meta, path, exporter=exporter)
    images = torch.randint(
        0, 256, (4, channels, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    return used, check_parity(
        model,
        path,
        images,
        Normalize(meta["input"]["mean"], meta["input"]["std"]),
        source="random inputs",
        tolerance=1e-3,
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
        for n in list_models(task="classify")
        if n not in CANNOT
    ],
)
def test_every_registry_model_exports_with_parity(name, tmp_path):
    expected = "dynamo" if name in NEEDS_DYNAMO else "torchscript"
    used, parity = _registry_case(name, tmp_path, exporter=expected)
    assert used == expected
    assert parity.ok, parity.text()
    assert parity.top1_agreement == 1.0 and parity.max_abs_diff <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "fastnet_s", "efficientnet_lite0"])
def test_dynamo_exporter_with_parity(name, tmp_path):
    used, parity = _registry_case(name, tmp_path, exporter="dynamo")
    assert used == "dynamo" and parity.ok, parity.text()


def test_export_run_writes_onnx_and_parity_json(run_copy):
    r = export_checkpoint(run_copy, exporter="torchscript", images=20)
    assert r.path == run_copy / "export" / "model.onnx" and r.path.is_file()
    record = json.loads((run_copy / "export" / "model.parity.json").read_text())
    assert record["passed"] is True and record["images"] == 20 and record["source"] == "test split"
    assert record["top1_agreement"] == 1.0 and record["max_abs_diff"] <= 1e-3
    assert record["exporter"] == "torchscript" and record["opset"] == 18


def test_compare_logits_counts_disagreement_and_ties():
    ref = torch.tensor([[1.0, 0.0], [0.5, 0.5004], [2.0, 0.0]])
    got = torch.tensor([[0.0, 1.0], [0.5004, 0.5], [2.0, 0.0]])
    p = compare_logits(ref, got, tolerance=1e-3, source="x")
    assert p.ties == 1  # row 2: a tie within the tolerance counts as agreement
    assert p.top1_agreement == pytest.approx(2 / 3) and p.max_abs_diff == pytest.approx(1.0)
    assert not p.ok


def test_compare_logits_of_segmentation_counts_pixels():
    ref = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    got = ref.clone()
    other = (int(ref[1, :, 2, 3].argmax()) + 1) % 3
    got[1, other, 2, 3] = ref[1, :, 2, 3].max() + 5  # one pixel's top class changes
    p = compare_logits(ref, got, tolerance=1e-3, source="x")
    assert p.images == 2 and p.top1_agreement == pytest.approx(1 - 1 / 40) and not p.ok


def test_cli_export_fails_loudly_when_parity_fails(run_copy, monkeypatch, capsys):
    import cnnkit.deploy.runtime as runtime

    real = runtime.run_logits
    monkeypatch.setattr(runtime, "run_logits", lambda sess, x, batch_size=256: real(sess, x, batch_size).flip(1) * 3)
    code = main(["export", str(run_copy), "--exporter", "torchscript", "--images", "8"])
    out = capsys.readouterr().out
    assert code == 1
    assert "parity FAILED on 8 images" in out and "top-1 agreement" in out
    assert json.loads((run_copy / "export" / "model.parity.json").read_text())["passed"] is False


def test_cli_export_ok(run_copy, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert (
        main(
            ["export", str(run_copy), "--exporter", "torchscript", "--images", "8", "--out", str(out), "--opset", "17"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "parity passed on 8 images (test split)" in text
    assert json.loads((tmp_path / "m.parity.json").read_text())["opset"] == 17


def test_cli_export_bad_opset(run_copy, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", str(run_copy), "--opset", "5"])
    assert e.value.code == 2 and "--opset" in capsys.readouterr().err


@pytest.mark.slow  # a tiny segmentation run, then its export (~30 s on shared cores)
def test_a_segmentation_checkpoint_exports_with_pixel_parity(tmp_path):
    from tests.data.segment_pairs import make_pairs

    data = make_pairs(tmp_path / "pairs", n=6, size=16, classes=3)
    args = [
        "train",
        "--task",
        "segment",
        "--data",
        str(data),
        "--model",
        "unet",
        "--set",
        "model.kwargs={width: 4, depth: 2}",
    ]
    args += ["--epochs", "1", "--batch-size", "4", "--threads", "1", "--runs-dir", str(tmp_path), "--name", "s"]
    assert main([*args, "--quiet", "--set", "run.html_report=false"]) == 0
    result = export_checkpoint(tmp_path / "s", out=tmp_path / "seg.onnx", images=8)
    record = json.loads(result.parity_path.read_text())
    assert record["passed"] is True and record["top1_agreement"] == 1.0 and record["images"] == 8
