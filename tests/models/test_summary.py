import json

import pytest
import torch

from cnnkit.cli import main
from cnnkit.models import create_model
from cnnkit.models.summary import count_macs, summarize


def meta_model(name, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name,expected", [("resnet18", 1.814e9), ("mobilenet_v2", 0.3008e9)])
def test_macs_at_imagenet_size_match_the_published_totals(name, expected):
    macs = count_macs(meta_model(name, num_classes=1000, in_chans=3), (3, 224, 224))
    assert macs == pytest.approx(expected, rel=2e-3)


def test_per_layer_rows_shapes_params_and_receptive_fields():
    m = create_model("conv(8,3)-relu-conv(8,3)-maxpool(2)-conv(16,3,padding=valid)-gap-fc", num_classes=10, in_chans=1)
    s = summarize(m, (1, 28, 28), batch_size=32)
    convs = [r for r in s.rows if r.kind == "Conv2d"]
    assert [r.shape for r in convs] == [(8, 28, 28), (8, 28, 28), (16, 12, 12)]
    assert [r.rf for r in convs] == [3, 5, 10]  # 3, 3+2, pool -> 6 (jump 2), 6 + 2*2
    assert [r.macs for r in convs] == [1 * 8 * 9 * 28 * 28, 8 * 8 * 9 * 28 * 28, 8 * 16 * 9 * 12 * 12]
    assert convs[0].params == 8 * 9 + 8
    assert s.params == sum(r.params for r in s.rows) == sum(p.numel() for p in m.parameters())
    assert s.macs == sum(r.macs for r in s.rows)
    assert s.rows[-1].shape == (10,)
    assert s.activation_bytes == 4 * 32 * sum(torch.Size(r.shape).numel() for r in s.rows)
    text = s.format()
    assert "16x12x12" in text and f"{s.params:,} " in text


def test_receptive_field_through_residual_blocks():
    # ResNet-18's published theoretical receptive field is 435 px
    s = summarize(meta_model("resnet18", num_classes=1000, in_chans=3), (3, 224, 224))
    assert next(r for r in s.rows if r.name == "net.layer4.1.conv2").rf == 435


def test_summary_leaves_the_model_untouched():
    m = create_model("fastnet_s", num_classes=10, in_chans=3)
    before = m.features.stem[0].weight.detach().clone()
    summarize(m, (3, 32, 32))
    assert m.features.stem[0].weight.device.type == "cpu" and torch.equal(m.features.stem[0].weight, before)


def test_cli_summary_of_a_spec_a_name_and_a_checkpoint(tmp_path, capsys):
    spec = "conv(32,3)-bn-relu-maxpool(2)-conv(64,3,stride=1,padding=same)-bn-relu-gap-dropout(0.3)-fc(10)"
    assert main(["summary", spec, "--input", "1x28x28", "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "64x14x14" in out and "MACs per image: 3.84M" in out
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["params"] == 19_562 and data["layers"][0]["output"] == [32, 28, 28]

    assert main(["summary", "resnet18", "--input", "3x32x32", "--small-input", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "512x4x4" in out and "11,173,962" in out

    from cnnkit.checkpoint import atomic_save, make_checkpoint

    m = create_model("lenet5", num_classes=10, in_chans=1)
    atomic_save(
        make_checkpoint(
            m,
            class_names=list("0123456789"),
            channels=1,
            size=(28, 28),
            mean=[0.1],
            std=[0.3],
            config={},
            dataset="d",
            epoch=1,
            metrics={},
        ),
        tmp_path / "l.ckpt",
    )
    assert main(["summary", str(tmp_path / "l.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "16x5x5" in out and "61,706" in out


def test_cli_summary_bad_input_shape(capsys):
    assert main(["summary", "lenet5", "--input", "28by28"]) == 2
    assert "expected CxHxW" in capsys.readouterr().err


def test_cli_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("name", " "))}
    assert {
        "lenet5",
        "alexnet",
        "vgg16_bn",
        "resnet50",
        "googlenet",
        "densenet121",
        "mobilenet_v3_large",
        "efficientnet_lite0",
        "convnext_tiny",
        "fastnet_s",
        "spec",
    } <= set(rows)
    assert "11,689,512" in rows["resnet18"] and "1.81G" in rows["resnet18"] and " yes " in rows["resnet18"]
    assert "300.77M" in rows["mobilenet_v2"]
    assert " no " in rows["vgg16"] and "138,357,544" in rows["vgg16"]
