import numpy as np
import pytest
import scipy.linalg
import torch

from cnnkit.models import create_model
from cnnkit.tasks.gan.fid import class_shares, classifier_features, frechet_distance, quality


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5])
    b = torch.randn(20000, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 0.5]) + torch.tensor(
        [1.0, 0, 0]
    )
    expected = 1.0 + (1 - 3) ** 2  # ||mu||^2 + sum (sigma_a - sigma_b)^2
    assert frechet_distance(a, b) == pytest.approx(expected, abs=0.15)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_scipys_sqrtm():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)) + 0.3
    s_a, s_b = np.cov(a.T), np.cov(b.T)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a + s_b - 2 * scipy.linalg.sqrtm(s_a @ s_b).real)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, rel=1e-6)


def _digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 8, 8) uint8 images of two kinds (bright top or bright bottom) and their kind."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 2
    x[y == 0, :, :4] = 220
    x[y == 1, :, 4:] = 220
    return x, y


def test_a_collapsed_generator_scores_worse_than_real_images():
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=2, in_chans=1, width=4, stages=1, depth=1)
    real_test, _ = _digits(200, 1)
    real_train, _ = _digits(200, 2)
    collapsed = real_train[:1].repeat(200, 1, 1, 1)  # copies of one image
    good = quality(model, [0.5], [0.25], real_train, real_test, real_train=real_train)
    bad = quality(model, [0.5], [0.25], collapsed, real_test)
    assert good["fid"] == pytest.approx(good["fid_real_floor"])  # the same images: the floor
    assert bad["fid"] > 5 * good["fid"] and good["n_generated"] == 200
    assert max(bad["class_shares"]) == 1.0 and sum(good["class_shares"]) == pytest.approx(1.0)


def test_features_are_the_heads_input():
    model = create_model("simple_cnn", num_classes=2, in_chans=1, width=4, stages=1, depth=1)
    x, _ = _digits(6, 0)
    feats, preds = classifier_features(model, x, [0.5], [0.25], batch=4)
    head = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert feats.shape == (6, head.in_features) and preds.shape == (6,)
    assert torch.equal(head(feats).argmax(1), preds)


def test_class_shares():
    assert class_shares(torch.tensor([0, 2, 2, 2]), 4) == [0.25, 0.0, 0.75, 0.0]
