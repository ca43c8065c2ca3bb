"""search/latency.py: the median of timed batch-1 forwards, threads and mode restored."""

import time

import pytest
import torch
from torch import nn

from cnnkit.search.latency import measure_latency_ms


class Slow(nn.Module):
    """Sleeps 20 ms on its first timed call and 2 ms on the others: the median ignores the outlier."""

    def __init__(self):
        super().__init__()
        self.calls, self.shapes, self.modes, self.grad = 0, [], [], []

    def forward(self, x):
        self.calls += 1
        self.shapes.append(tuple(x.shape))
        self.modes.append(self.training)
        self.grad.append(torch.is_grad_enabled())
        time.sleep(0.02 if self.calls == 3 else 0.002)
        return x


def test_median_of_the_timed_forwards_after_warmup():
    model, before = Slow(), torch.get_num_threads()
    ms = measure_latency_ms(model, (3, 8, 8), threads=1, warmup=2, repeats=5)
    assert model.calls == 7 and set(model.shapes) == {(1, 3, 8, 8)}
    assert 2.0 <= ms < 15.0  # the 20 ms call (the first timed one) is not the median
    assert model.modes == [False] * 7 and model.grad == [False] * 7
    assert model.training and torch.get_num_threads() == before


def test_bad_repeats_are_refused():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_latency_ms(nn.Identity(), (1, 2, 2), repeats=0)
