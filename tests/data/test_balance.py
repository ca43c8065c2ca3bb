import pytest
import torch
from tests.conftest import make_image_folder

from cnnkit.config import Config, DataConfig
from cnnkit.data import build_dataset
from cnnkit.data.balance import (
    balanced_indices,
    class_counts,
    class_weights,
    imbalance_ratio,
    oversample_indices,
    pos_weight,
    sample_weights,
)
from cnnkit.data.types import stratified_split
from cnnkit.errors import ConfigError

LABELS = torch.tensor([0] * 6 + [1] * 3 + [2])


def test_counts_and_ratio():
    assert class_counts(LABELS, 4).tolist() == [6, 3, 1, 0]
    assert imbalance_ratio([6, 3, 1, 0]) == 6.0


def test_class_weights_inverse_frequency_mean_one():
    w = class_weights(LABELS, 4)
    # w_c ~ 1/n_c, scaled so sum over images of w_y = N
    assert torch.allclose(w[:3] / w[2], torch.tensor([1 / 6, 1 / 3, 1.0]))
    assert w[3] == 0 and torch.isclose(w[LABELS].sum(), torch.tensor(10.0))
    assert torch.allclose(class_weights(LABELS, 3, power=0.0), torch.ones(3))


def test_pos_weight_for_multi_hot():
    y = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 0.0]])
    assert torch.allclose(pos_weight(y), torch.tensor([1 / 3, 1.0, 0.0]))
    assert class_counts(y, 3).tolist() == [3, 2, 0]


def test_balanced_sampling_equalises_classes():
    w = sample_weights(LABELS)
    assert torch.allclose(torch.stack([w[c == LABELS].sum() for c in range(3)]), torch.ones(3).double())
    g = torch.Generator().manual_seed(0)
    idx = balanced_indices(LABELS, 30000, g)
    frac = torch.bincount(LABELS[idx], minlength=3).double() / 30000
    assert torch.allclose(frac, torch.full((3,), 1 / 3).double(), atol=0.02)


def test_oversample_reaches_the_largest_class_and_keeps_every_image():
    idx = oversample_indices(LABELS, seed=0)
    assert torch.bincount(LABELS[idx]).tolist() == [6, 6, 6]
    assert set(range(10)) <= set(idx.tolist())
    assert torch.equal(idx, oversample_indices(LABELS, seed=0))


def test_balance_option_in_build_dataset(tmp_path):
    root = tmp_path / "imgs"
    make_image_folder(root, classes=("a",), per_class=8, size=4)
    make_image_folder(root, classes=("a", "b"), per_class=2, size=4)  # a keeps 8, b gets 2
    cfg = DataConfig(dataset="folder", path=str(root), image_size=4, val_fraction=0.5)
    assert build_dataset(cfg, seed=0).train.class_counts(2) == [4, 1]
    ds = build_dataset(DataConfig(**{**cfg.__dict__, "balance": "oversample"}), seed=0)
    assert ds.train.class_counts(2) == [4, 4] and ds.val.class_counts(2) == [4, 1]
    with pytest.raises(ConfigError, match="'data.balance': 'weights' is not one of none, oversample, sampler"):
        Config().with_overrides({"data.balance": "weights"})  # the closed set is checked by the config loader


def test_stratified_split_is_seeded_and_stratified():
    labels = torch.tensor([0] * 10 + [1] * 20)
    keep, held = stratified_split(labels, 0.2, seed=5)
    assert torch.bincount(labels[held]).tolist() == [2, 4] and len(keep) == 24
    assert torch.equal(held, stratified_split(labels, 0.2, seed=5)[1])
    assert not torch.equal(held, stratified_split(labels, 0.2, seed=6)[1])


def test_multi_label_stratification_spreads_rare_classes():
    y = torch.zeros(20, 3)
    y[:, 0] = 1  # every row has the common class
    y[:4, 2] = 1  # a rare class on 4 rows
    keep, held = stratified_split(y, 0.25, seed=0)
    assert y[held, 2].sum() == 1 and y[keep, 2].sum() == 3
