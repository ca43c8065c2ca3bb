"""cnnkit.data._registry: registration, the checks build_dataset makes, channel conversion."""

import pytest
import torch

from cnnkit.config import DataConfig
from cnnkit.data import _registry, build_dataset, register_dataset
from cnnkit.data._registry import convert_channels
from cnnkit.data.types import Dataset, Split
from cnnkit.errors import ConfigError


def test_a_dataset_name_is_registered_once(monkeypatch):
    monkeypatch.setattr(_registry, "_DATASETS", {})
    deco = register_dataset("twice", description="", num_classes=2, size="", location="")
    deco(lambda cfg, seed: None)
    with pytest.raises(ValueError, match=r"dataset 'twice' is already registered"):
        deco(lambda cfg, seed: None)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"channels": 2}, r"data.channels must be 1 or 3, got 2"),
        ({"subset_per_class": 0}, r"data.subset_per_class must be at least 1, got 0"),
    ],
)
def test_bad_data_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_dataset(DataConfig(**overrides))


def test_convert_channels_rgb_to_luma_and_back():
    rgb = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], dtype=torch.uint8)
    images = rgb.view(4, 3, 1, 1).clone()
    data = Dataset(
        "rgb",
        ["a", "b"],
        train=Split(images, torch.tensor([0, 1, 0, 1])),
        val=Split(images[:2], torch.tensor([0, 1])),
        test=None,
    )
    gray = convert_channels(data, 1)
    assert gray.channels == 1 and gray.test is None
    assert gray.train.images.flatten().tolist() == [76, 150, 29, 255]  # ITU-R 601: 0.299, 0.587, 0.114
    assert gray.val.images.flatten().tolist() == [76, 150]
    assert gray.mean[0] == pytest.approx((76 + 150 + 29 + 255) / 4 / 255, abs=1e-6)  # statistics recomputed
    back = convert_channels(gray, 3)
    assert back.train.images.shape == (4, 3, 1, 1) and back.train.images[0].flatten().tolist() == [76, 76, 76]
