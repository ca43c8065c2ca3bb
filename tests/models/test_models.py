import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import ClassifierBase, create_model, list_models, register_model


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_chans,size", [(1, 28), (3, 32)])
def test_interface_forward_backward_reset(name, in_chans, size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=in_chans, **({"image_size": size} if name == "lenet5" else {}))
    assert isinstance(model, ClassifierBase)
    x = torch.randn(2, in_chans, size, size)
    model.eval()
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))
    model.train()
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    assert model.get_submodule(model.target_layer) is not None
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
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
