import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import ClassifierBase, create_model, list_models, register_model
from cnnkit.models._registry import accepts

# models costing > 300 MMACs at 28 px with their small-input stem run the registry test at
# 16 px (the same code path, a quarter of the work); test_heavy_models_at_28px runs them at 28 (slow)
HEAVY = {"googlenet", "resnet18", "resnet34", "resnet50", "densenet121", "fastnet_l", "vit_tiny"}


def build_kwargs(name: str, size: int, small_input: bool) -> dict:
    if name == "alexnet" or name.startswith(
        "vgg"
    ):  # ImageNet forms need >= 63 px / carry 120 M FC weights: small_input at both sizes
        small_input = True
    kwargs = {"small_input": small_input} if accepts(name, "small_input") else {}
    if name == "lenet5":
        kwargs["image_size"] = size
    return kwargs


# 1x28x28 with the small-input stem (the 28-64 px path), 3x32x32 with the ImageNet stem
# (where a model has both), so both stems of every model run forward and backward
@pytest.mark.parametrize("name", list_models(task="classify"))
@pytest.mark.parametrize("in_chans,size,small_input", [(1, 28, True), (3, 32, False)])
def test_interface_forward_backward_reset(name, in_chans, size, small_input):
    if name in HEAVY and small_input:
        size = 16
    check_interface(name, in_chans, size, small_input)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_models_at_28px(name):
    check_interface(name, 1, 28, True)


def check_interface(name, in_chans, size, small_input):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=in_chans, **build_kwargs(name, size, small_input))
    assert isinstance(model, ClassifierBase)
    x = torch.randn(2, in_chans, size, size)
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), model(x))
    model.train()
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.in_channels == in_chans
    trainable = [
        p for p in first.parameters() if p.requires_grad
    ]  # fastnet's whitening filters are frozen; their bias trains
    assert trainable and all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert model.get_submodule(model.target_layer) is not None
    model.reset_classifier(3)
    with torch.no_grad():
        assert model.eval().forward_head(features).shape == (2, 3)
    assert model.cnnkit_spec["name"] == name and model.cnnkit_spec["kwargs"]["num_classes"] == 7


def test_unknown_model_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'simple_cnn'"):
        create_model("simple_cnm")


def test_unknown_kwarg_suggests():
    with pytest.raises(ConfigError, match="takes no argument 'widht'.*Did you mean 'width'"):
        create_model("simple_cnn", widht=8)


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_model("simple_cnn")(lambda num_classes, in_chans: None)


def test_lenet5_has_the_classic_shapes():
    m = create_model("lenet5", num_classes=10, in_chans=1, image_size=32)
    assert m.forward_features(torch.zeros(1, 1, 32, 32)).shape == (1, 16, 5, 5)
    assert sum(p.numel() for p in m.parameters()) == 61706  # LeNet-5's well-known parameter count


def test_simple_cnn_width_and_stages():
    m = create_model("simple_cnn", num_classes=10, in_chans=1, width=8, stages=2)
    assert m.forward_features(torch.zeros(1, 1, 28, 28)).shape == (1, 16, 14, 14)


@pytest.mark.parametrize(
    "name,expected",
    # torchvision's reference counts for the same layouts at 1000 classes
    [
        ("alexnet", 61_100_840),
        ("vgg11", 132_863_336),
        ("vgg11_bn", 132_868_840),
        ("vgg16", 138_357_544),
        ("vgg16_bn", 138_365_992),
    ],
)
def test_classics_have_the_published_parameter_counts(name, expected):
    with torch.device("meta"):
        m = create_model(name, num_classes=1000, in_chans=3)
    assert sum(p.numel() for p in m.parameters()) == expected


# golden outputs: fixed seed, 2 images, 4 classes (eval mode); catch any change in the layers' order or wiring
GOLDEN = {
    "lenet5": ({"image_size": 32}, 1, [0.04114, 0.07481, 0.07541, -0.06173, 0.01883, 0.11131, 0.06265, -0.07653]),
    "alexnet": ({"small_input": True}, 3, [-0.02365, 0.00309, -0.02416, 0.02301, -0.02401, 0.00341, -0.02335, 0.02305]),
    "vgg11_bn": ({"small_input": True}, 3, [0.00178, 0.00471, 0.03253, 0.00899, 0.00177, 0.00471, 0.03255, 0.00898]),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_classics_golden_outputs(name):
    kwargs, c, expected = GOLDEN[name]
    torch.manual_seed(0)
    m = create_model(name, num_classes=4, in_chans=c, **kwargs).eval()
    x = torch.randn(2, c, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = m(x).flatten()
    torch.testing.assert_close(out, torch.tensor(expected), atol=2e-5, rtol=1e-3)


@pytest.mark.parametrize(
    "name,size,feature_shape",
    [
        ("alexnet", 224, (256, 13, 13)),
        ("alexnet", 32, (256, 7, 7)),
        ("vgg16", 224, (512, 7, 7)),
        ("vgg16", 32, (512, 2, 2)),
        ("resnet18", 224, (512, 7, 7)),
        ("resnet18", 32, (512, 4, 4)),
    ],
)
def test_small_input_stems_keep_spatial_detail(name, size, feature_shape):
    with torch.device("meta"):
        m = create_model(name, num_classes=10, in_chans=3, small_input=size < 64)
        assert tuple(m.forward_features(torch.zeros(1, 3, size, size)).shape[1:]) == feature_shape


def test_pretrained_is_not_recorded_in_the_spec(monkeypatch):
    import cnnkit.models._backbone as backbone

    calls = []
    real = backbone.torchvision_net

    def fake(arch, num_classes, pretrained, **kw):
        calls.append(pretrained)
        return real(arch, num_classes, False, **kw)

    monkeypatch.setattr("cnnkit.models.resnet.torchvision_net", fake)
    m = create_model("resnet18", num_classes=5, in_chans=3, pretrained=True, small_input=True)
    assert calls == [True]
    assert m.cnnkit_spec == {"name": "resnet18", "kwargs": {"num_classes": 5, "in_chans": 3, "small_input": True}}
