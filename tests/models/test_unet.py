"""models/unet.py: the plain U-Net: output size = input size (odd sizes too), the skips matter,
width / depth shape it as the paper says, and it is registered as a segmentation model."""

import pytest
import torch

from cnnkit.models import create_model, list_models, model_info
from cnnkit.models.unet import UNet


@pytest.mark.parametrize("hw", [(32, 32), (17, 23), (9, 40)])
def test_output_is_one_logit_per_class_and_pixel(hw):
    model = create_model("unet", num_classes=3, in_chans=2, width=4, depth=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 2, *hw))
    assert out.shape == (2, 3, *hw)


def test_every_skip_connection_changes_the_output():
    torch.manual_seed(0)
    # train mode: batch norm rescales each level, so even the deepest skip's share is visible at random init
    model = UNet(num_classes=2, in_chans=1, width=4, depth=3).train()
    x = torch.randn(2, 1, 24, 24)
    with torch.no_grad():
        ref = model(x)
        for level, up in enumerate(model.ups):
            original = up.forward

            def no_skip(h, skip, original=original):
                return original(h, torch.zeros_like(skip))  # the skip's contribution removed

            up.forward = no_skip
            assert (model(x) - ref).abs().max() > 0.1, f"skip of level {level} has no effect"
            up.forward = original
        assert torch.equal(model(x), ref)


def test_width_and_depth_follow_the_paper():
    paper = UNet(num_classes=2, in_chans=1, width=64, depth=4)
    # channels double per level: 64 -> 1024 at the bottom; the up-convolutions halve them back
    assert paper.downs[-1][1][0].out_channels == 1024
    assert [up.up.out_channels for up in paper.ups] == [64, 128, 256, 512]
    assert 31_000_000 < sum(p.numel() for p in paper.parameters()) < 31_100_000  # the paper's ~31 M (with BN)
    small = UNet(width=8, depth=2)
    assert len(small.downs) == 2 and small.head.in_channels == 8
    with pytest.raises(ValueError, match="width >= 1 and depth >= 1"):
        UNet(width=0)


def test_registered_as_a_segmentation_model():
    assert model_info("unet").task == "segment"
    assert "unet" in list_models(task="segment") and "unet" not in list_models(task="classify")
    model = create_model("unet", num_classes=2, in_chans=1, width=4, depth=2)
    assert model.cnnkit_spec == {"name": "unet", "kwargs": {"num_classes": 2, "in_chans": 1, "width": 4, "depth": 2}}
    model.reset_classifier(5)
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 5, 8, 8)
    assert model.get_submodule(model.target_layer) is model.ups[0]
