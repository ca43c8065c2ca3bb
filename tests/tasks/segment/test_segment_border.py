"""The U-Net paper's border weights on a hand-made mask: two cells 2 px apart get a peak between them."""

import math

import numpy as np
import pytest
import torch

from cnnkit.tasks.segment.border import BorderWeights, border_weights


def _two_cells() -> np.ndarray:
    mask = np.zeros((12, 30), np.int64)
    mask[2:10, 2:12] = 1  # cell A: columns 2..11
    mask[2:10, 14:26] = 1  # cell B: columns 14..25, a 2-px gap (columns 12, 13) between them
    mask[0, 0] = 255
    return mask


def test_weights_peak_in_the_gap_between_touching_cells():
    mask = _two_cells()
    w = border_weights(mask, w0=10.0, sigma=5.0)
    # column 12: 1 px from A, 2 px from B; the paper's w = 1 + 10 exp(-(1 + 2)^2 / (2 * 5^2))
    assert w[5, 12] == pytest.approx(1 + 10 * math.exp(-9 / 50), rel=1e-5)
    assert w[5, 13] == pytest.approx(w[5, 12], rel=1e-5)  # symmetric: 2 px from A, 1 px from B
    gap_peak = w[:, 12:14].max()
    assert w.max() == pytest.approx(gap_peak)  # nowhere higher than between the cells
    assert w[5, 4] == 1.0 and w[5, 20] == 1.0  # inside the cells: w_c only
    assert w[11, 29] < w[5, 12] / 3  # background far from the gap: much less
    assert w[0, 0] == 0.0  # ignored


def test_class_weights_are_the_base_and_one_cell_gets_no_border_term():
    mask = _two_cells()
    w = border_weights(mask, w0=10.0, sigma=5.0, class_weights=np.array([2.0, 0.5]))
    assert w[5, 4] == 0.5 and w[5, 12] == pytest.approx(2 + 10 * math.exp(-9 / 50), rel=1e-5)
    one = mask.copy()
    one[one == 1] = 0
    one[2:10, 2:12] = 1
    assert np.array_equal(border_weights(one, 10.0, 5.0), (one != 255).astype(np.float32))


def test_maps_are_computed_once_per_mask():
    weights = BorderWeights(10.0, 5.0)
    batch = torch.from_numpy(np.stack([_two_cells(), _two_cells()[:, ::-1].copy()]))
    first = weights(batch)
    again = weights(batch)
    assert weights.computed == 2 and torch.equal(first, again) and first.shape == (2, 12, 30)
    torch.testing.assert_close(first[1], first[0].flip(-1))
