"""models/tv_segmentation.py: torchvision's DeepLabV3 / FCN as registry segmentation models:
one logit per class and pixel at the input's size, any channel count, a head that can be reset."""

import pytest
import torch

from cnnkit.models import create_model, list_models


@pytest.mark.slow  # 11 M / 33 M parameters: seconds per forward pass on a shared CPU
@pytest.mark.parametrize("name", ["deeplabv3_mobilenet", "fcn_resnet50"])
def test_per_pixel_logits_at_the_input_size(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_chans=1)
    x = torch.randn(2, 1, 37, 45)
    out = model.train()(x)
    assert out.shape == (2, 3, 37, 45)
    out.mean().backward()
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.in_channels == 1 and stem.weight.grad is not None and stem.weight.grad.abs().sum() > 0
    model.reset_classifier(5)
    assert model.eval()(x).shape == (2, 5, 37, 45)


def test_listed_with_the_segmentation_models():
    assert {"deeplabv3_mobilenet", "fcn_resnet50", "unet"} <= set(list_models(task="segment"))
