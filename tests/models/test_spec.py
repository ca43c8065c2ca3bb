import pytest
import torch
import yaml

from cnnkit.models import create_model
from cnnkit.models.spec import SpecError, parse_spec

ISSUE_SPEC = "conv(32,3)-bn-relu-maxpool(2)-conv(64,3,stride=1,padding=same)-bn-relu-gap-dropout(0.3)-fc(10)"


def test_issue_example_builds_and_runs():
    m = create_model(ISSUE_SPEC, num_classes=10, in_chans=1)
    assert m.cnnkit_spec["name"] == "spec" and m.cnnkit_spec["kwargs"]["spec"] == ISSUE_SPEC
    assert [type(x).__name__ for x in m.features] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
    ]
    assert m.features[0].bias is None  # bn follows: no bias
    assert m.features[4].padding == "same" and m.features[4].out_channels == 64
    assert m(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert m.forward_features(torch.zeros(1, 1, 28, 28)).shape == (1, 64, 14, 14)
    assert m.target_layer == "features.6"


def test_yaml_list_is_the_same_model():
    listed = yaml.safe_load(
        "- conv(32,3)\n- bn\n- relu\n- maxpool(2)\n- conv(64,3,stride=1,padding=same)\n- bn\n- relu\n- gap\n- dropout(0.3)\n- fc(10)\n"
    )
    a = create_model("spec", spec=listed, num_classes=10, in_chans=1)
    b = create_model(ISSUE_SPEC, num_classes=10, in_chans=1)
    assert a.cnnkit_spec == b.cnnkit_spec
    assert [tuple(p.shape) for p in a.parameters()] == [tuple(p.shape) for p in b.parameters()]


def test_spec_model_round_trips_through_a_checkpoint(tmp_path):
    from cnnkit.checkpoint import atomic_save, load_checkpoint, make_checkpoint, model_from_checkpoint

    m = create_model("conv(8,3)-bn-relu-res(16,stride=2)-gap-fc", num_classes=3, in_chans=1).eval()
    ckpt = make_checkpoint(
        m,
        class_names=["a", "b", "c"],
        channels=1,
        size=(16, 16),
        mean=[0.5],
        std=[0.25],
        config={},
        dataset="x",
        epoch=1,
        metrics={},
    )
    atomic_save(ckpt, tmp_path / "m.ckpt")
    again = model_from_checkpoint(load_checkpoint(tmp_path / "m.ckpt"))
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(again(x), m(x))
    assert again.spec_string == "conv(8,3)-bn-relu-res(16,stride=2)-gap-fc"


def test_tokens_and_arguments():
    toks = parse_spec(
        "conv(16, 5, stride=2, padding=valid)-dwconv(3,mult=2)-avgpool(3,stride=1,padding=1)-dropout(.25)-flatten-fc(7)"
    )
    assert [t.name for t in toks] == ["conv", "dwconv", "avgpool", "dropout", "flatten", "fc"]
    assert toks[0].args == [16, 5] and toks[0].kwargs == {"stride": 2, "padding": "valid"}
    assert toks[3].args == [0.25]
    m = create_model(
        "spec",
        spec="conv(16,5,stride=2,padding=valid)-dwconv(3,mult=2)-avgpool(3,stride=1,padding=1)-silu-flatten-fc(7)",
        num_classes=7,
        in_chans=3,
        image_size=32,
    )
    dw = m.features[1]
    assert dw.groups == 16 and dw.out_channels == 32
    assert m.forward_features(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 14, 14)  # (32 - 5) // 2 + 1 = 14
    assert m.head[-1].in_features == 32 * 14 * 14 and m(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


@pytest.mark.parametrize("act", ["relu", "gelu", "silu", "sigmoid", "tanh"])
def test_activations(act):
    m = create_model(f"conv(4,3)-{act}-gap-fc", num_classes=2, in_chans=1)
    assert (
        type(m.features[1]).__name__.lower()
        == {"relu": "relu", "gelu": "gelu", "silu": "silu", "sigmoid": "sigmoid", "tanh": "tanh"}[act]
    )


def test_residual_blocks():
    m = create_model(
        "conv(16,3)-res(16)-res(32,stride=2)-res(conv(32,3)-bn-relu-conv(32,3)-bn)-gap-fc", num_classes=4, in_chans=3
    )
    basic, down, custom = m.features[1], m.features[2], m.features[3]
    assert isinstance(basic.shortcut, torch.nn.Identity)
    assert down.shortcut[0].stride == (2, 2) and down.shortcut[0].out_channels == 32  # 1x1 projection
    assert isinstance(custom.shortcut, torch.nn.Identity) and isinstance(custom.post, torch.nn.Identity)
    x = torch.randn(2, 3, 16, 16)
    assert m.forward_features(x).shape == (2, 32, 8, 8)
    # the block really adds its input: zeroing the body leaves the identity
    for p in custom.body.parameters():
        torch.nn.init.zeros_(p)
    m.eval()
    with torch.no_grad():
        before = m.features[:3](x)
        assert torch.equal(custom(before), before)


def test_spec_appends_or_checks_the_classifier():
    assert create_model("conv(8,3)-relu-gap", num_classes=5, in_chans=1)(torch.zeros(1, 1, 8, 8)).shape == (1, 5)
    with pytest.raises(SpecError, match=r"ends in fc\(10\) but the model needs 3 outputs"):
        create_model("conv(8,3)-gap-fc(10)", num_classes=3, in_chans=1)


@pytest.mark.parametrize(
    "spec,message,caret",
    [
        ("conv(32,3)-bn-rleu-gap-fc", r"unknown layer 'rleu'. Did you mean 'relu'\?", "rleu"),
        (
            "conv(32)-relu-gap-fc",
            r"conv\(32\): wrong arguments; expected conv\(out_channels, kernel, stride=1, padding=same\|valid\|N",
            "conv(32)",
        ),
        ("conv(32,3,strde=2)-gap-fc", r"unknown argument 'strde'; expected conv\(out_channels", "conv(32,3,strde=2)"),
        ("conv(32,3)-maxpool(2-gap", r"unclosed '\('", None),
        ("conv(32,3)--gap-fc", r"empty layer", None),
        ("conv(32,3)-dropout(1.5)-gap-fc", r"dropout\(1.5\): expected dropout\(p\) with 0 <= p < 1", "dropout(1.5)"),
        ("conv(32,3,stride=2,padding=same)-gap-fc", r"padding=same needs stride=1", None),
        ("gap-fc", r"no convolution or pooling layer", None),
        (
            "conv(8,3)-gap-conv(8,3)-fc",
            r"conv\(8,3\) needs a feature map, but the layers before it made a vector of 8",
            None,
        ),
        (
            "conv(8,3)-flatten-fc",
            r"flattens a 8-channel feature map whose size depends on the input: give the input size",
            None,
        ),
        ("conv(8,3)-os.system(1)-fc", r"cannot read layer", None),
    ],
)
def test_errors_point_at_the_token(spec, message, caret):
    with pytest.raises(SpecError, match=message) as e:
        create_model(spec, num_classes=10, in_chans=1)
    text = str(e.value)
    assert spec in text  # the spec is quoted...
    if caret:  # ...with ^^^ under the offending token
        line, marks = text.splitlines()[-2:]
        start = marks.index("^")
        assert line[start : start + len(caret)] == caret and marks.count("^") == len(caret)


def test_collapse_names_the_layer_and_the_input_size():
    with pytest.raises(SpecError, match=r"maxpool\(2\) turns its 1x1 input into 0x0: .*model input 1x8x8"):
        create_model(
            "conv(8,3)-maxpool(2)-maxpool(2)-maxpool(2)-maxpool(2)-gap-fc", num_classes=2, in_chans=1, image_size=8
        )
    # without a known size, the same collapse is reported at run time
    m = create_model("conv(8,3)-maxpool(2)-maxpool(2)-maxpool(2)-maxpool(2)-gap-fc", num_classes=2, in_chans=1)
    with pytest.raises(SpecError, match=r"layer 5 'maxpool\(2\)' .*input of shape \(8, 1, 1\)"):
        m(torch.zeros(1, 1, 8, 8))


def test_name_and_spec_kwarg_together_is_an_error():
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="give one of them"):
        create_model("conv(8,3)-gap-fc", spec="conv(4,3)-gap-fc")


def test_a_mistyped_model_name_is_not_taken_for_a_spec():
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown model 'resnet-18'. Did you mean 'resnet18'"):
        create_model("resnet-18")
