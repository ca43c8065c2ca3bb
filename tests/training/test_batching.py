"""training/batching.py: every image is used each epoch, no batch is smaller than batch_size."""

import itertools

import pytest
import torch

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.training.batching import batch_end, clamp_batch_size
from cnnkit.training.loop import train_one_epoch


@pytest.mark.parametrize("n, bs", [(245, 64), (41, 5), (40, 5), (7, 7), (3, 5), (11, 5)])
def test_batches_cover_every_image_once_and_none_is_small(n, bs):
    steps = max(n // bs, 1)
    bounds = [(s, batch_end(s, bs, n)) for s in range(0, steps * bs, bs)]
    assert bounds[-1][1] == n and all(b[1] == c[0] for b, c in itertools.pairwise(bounds))
    sizes = [e - s for s, e in bounds]
    assert len(sizes) == steps and sum(sizes) == n
    assert min(sizes) >= min(bs, n) and max(sizes) < 2 * bs
    if (n, bs) == (245, 64):
        assert sizes == [64, 64, 117]  # drop_last used to skip 53 of the 245 images every epoch


def test_a_remainder_of_one_trains_with_batch_norm():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2)
    )
    data = Split(images=torch.randint(0, 255, (11, 1, 4, 4), dtype=torch.uint8), labels=torch.randint(0, 2, (11,)))
    sizes = []
    out = train_one_epoch(
        model,
        data,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        scheduler=None,
        normalize=Normalize((0.5,), (0.5,), torch.device("cpu")),
        batch_size=5,
        generator=torch.Generator().manual_seed(0),
        on_step=lambda step, steps, loss, acc, seen: sizes.append(seen),
    )
    assert out["images"] == 11 and sizes == [5, 11]  # 2 steps; the second batch took 6 images, none of them alone


def test_clamp_batch_size(capsys):
    assert clamp_batch_size(32, 100) == 32 and capsys.readouterr().err == ""
    assert clamp_batch_size(64, 45) == 45
    assert "train.batch_size 64 is larger than the 45 training images; using 45" in capsys.readouterr().err
    assert clamp_batch_size(64, 45, world_size=2, quiet=True) == 44
