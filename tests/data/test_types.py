"""cnnkit.data.types: the checks of Split and Dataset, and the stratified split's bounds."""

import pytest
import torch

from cnnkit.data.types import Dataset, Split, stratified_split
from cnnkit.errors import ConfigError, DataError


def _split(n: int = 4) -> Split:
    return Split(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n) % 2)


def test_split_refuses_non_uint8_images_and_mismatched_labels():
    with pytest.raises(ValueError, match=r"images must be uint8 \(N, C, H, W\), got torch.float32 \(4, 1, 2, 2\)"):
        Split(torch.zeros(4, 1, 2, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"images must be uint8 \(N, C, H, W\), got torch.uint8 \(4, 2, 2\)"):
        Split(torch.zeros(4, 2, 2, dtype=torch.uint8), torch.zeros(4))
    with pytest.raises(ValueError, match=r"labels shape \(3,\) does not match 4 images"):
        Split(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(3))


def test_dataset_split_by_name():
    ds = Dataset("tiny", ["a", "b"], train=_split(4), val=_split(2), test=None)
    assert len(ds.split("val")) == 2
    with pytest.raises(ValueError, match=r"unknown split 'dev': use train, val or test"):
        ds.split("dev")
    with pytest.raises(DataError, match=r"dataset 'tiny' has no test split; use --split val"):
        ds.split("test")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_val_fraction_outside_0_1_is_a_config_error(fraction):
    with pytest.raises(ConfigError, match=rf"data.val_fraction must be between 0 and 1 \(exclusive\), got {fraction}"):
        stratified_split(torch.arange(10) % 2, fraction, seed=0)
