import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.explain.attribution import attribute, resolve_layer, share_inside
from cnnkit.models import create_model


class TinyNet(nn.Module):
    """Smooth (tanh) and in float64, so finite differences are accurate."""

    target_layer = "conv"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def test_saliency_equals_finite_differences():
    torch.manual_seed(0)
    model = TinyNet().double().eval()
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    target = 2
    heat = attribute(model, x, "saliency", [target])[0]
    eps = 1e-6
    fd = np.zeros((6, 6))
    with torch.no_grad():
        for i in range(6):
            for j in range(6):
                d = torch.zeros_like(x)
                d[0, 0, i, j] = eps
                fd[i, j] = (model(x + d)[0, target] - model(x - d)[0, target]).item() / (2 * eps)
    expected = np.abs(fd) / np.abs(fd).max()
    np.testing.assert_allclose(heat, expected, atol=1e-5)
    assert heat.max() == pytest.approx(1.0)


def test_gradcam_matches_its_definition():
    """Grad-CAM = ReLU(sum_k mean(dy/dA_k) * A_k), upsampled, scaled to a maximum of 1."""
    torch.manual_seed(1)
    model = create_model("simple_cnn", num_classes=3, in_chans=1, width=4, stages=2, depth=1).eval()
    x = torch.randn(2, 1, 16, 16)
    targets = [0, 2]
    heat = attribute(model, x, "gradcam", targets)
    store = {}
    layer = dict(model.named_modules())[model.target_layer]
    h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    out = model(x)
    a = store["a"]
    h.remove()
    grads = torch.autograd.grad(out[torch.arange(2), torch.tensor(targets)].sum(), a)[0]
    cam = F.relu((grads.mean((2, 3), keepdim=True) * a).sum(1))  # (B, 8, 8)
    cam = F.interpolate(cam[:, None], size=(16, 16), mode="bilinear", align_corners=False)[:, 0].detach().numpy()
    for ours, ref in zip(heat, cam):
        ref = (ref - ref.min()) / (ref.max() - ref.min())
        np.testing.assert_allclose(ours, ref, atol=2e-3)
    assert heat.shape == (2, 16, 16)


def test_every_method_returns_unit_scaled_maps_and_defaults_to_the_prediction():
    torch.manual_seed(2)
    model = create_model("simple_cnn", num_classes=3, in_chans=3, width=4, stages=2, depth=1).eval()
    x = torch.randn(3, 3, 12, 12)
    for method in ("gradcam", "gradcam++", "saliency", "smoothgrad", "integrated-gradients"):
        heat = attribute(model, x, method, samples=4)
        assert heat.shape == (3, 12, 12), method
        assert heat.min() >= 0 and np.allclose(heat.reshape(3, -1).max(1), 1.0), method
    predicted = model(x).argmax(1)
    np.testing.assert_allclose(attribute(model, x, "saliency"), attribute(model, x, "saliency", predicted))


def test_layer_resolution_and_errors():
    model = create_model("simple_cnn", num_classes=2, in_chans=1, width=4, stages=3, depth=1)
    assert resolve_layer(model, None)[0] == "features.stage2"
    assert resolve_layer(model, "features.stage0")[0] == "features.stage0"
    with pytest.raises(ConfigError, match="no layer 'features.stage9'.*features.stage0"):
        resolve_layer(model, "features.stage9")
    with pytest.raises(ConfigError, match="unknown explanation method 'lime'"):
        attribute(model, torch.zeros(1, 1, 8, 8), "lime")


def test_share_inside():
    heat = np.zeros((4, 4))
    heat[0, 0], heat[3, 3] = 3.0, 1.0
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert share_inside(heat, mask) == pytest.approx(0.75)
    assert share_inside(np.zeros((4, 4)), mask) == 0.0


def test_captum_gradcam_agrees_with_pytorch_grad_cam():
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(3)
    model = create_model("simple_cnn", num_classes=4, in_chans=3, width=4, stages=2, depth=1).eval()
    x = torch.randn(3, 3, 16, 16)
    targets = [0, 1, 3]
    ours = attribute(model, x, "gradcam", targets)
    with GradCAM(model=model, target_layers=[resolve_layer(model, None)[1]]) as cam:
        theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


def test_cli_offers_exactly_the_library_methods():
    import cnnkit.explain
    from cnnkit.explain import commands

    assert commands.METHODS == cnnkit.explain.METHODS
    assert callable(cnnkit.explain.attribute) and callable(cnnkit.explain.explain_files)
