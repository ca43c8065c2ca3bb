import pytest
import torch
from torch import nn

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training import loop
from cnnkit.training.progressive import Resize, check_resizable, resize_batch
from cnnkit.training.trainer import train


def test_sizes_grow_from_start_to_full_by_end():
    r = Resize((32, 32), start=0.75, end=0.6)
    sizes = [r.size(e, 10)[0] for e in range(1, 11)]
    assert sizes == [24, 24, 24, 28, 28, 32, 32, 32, 32, 32]  # multiples of 4 px; full from epoch 6 = 0.6 x 10
    assert r.work(1, 10) == pytest.approx(0.5625) and r.work(10, 10) == 1.0
    assert Resize((64, 48), 0.5).size(1, 10) == (32, 24)  # each side on its own
    assert Resize((32, 32), 0.75, end=0.1).size(1, 10) == (32, 32)  # the ramp ends at epoch 1: full size throughout


@pytest.mark.parametrize("start, end", [(0.0, 0.6), (1.5, 0.6), (0.75, 0.0), (0.75, 1.2)])
def test_bad_fractions_name_the_key(start, end):
    with pytest.raises(ConfigError, match="train.progressive_(resize|end)"):
        Resize((32, 32), start, end)


def test_resize_batch_keeps_channels_last_and_skips_the_full_size():
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    out = resize_batch(x, (24, 24))
    assert out.shape == (4, 3, 24, 24) and out.is_contiguous(memory_format=torch.channels_last)
    assert resize_batch(x, (32, 32)) is x
    flat = torch.full((1, 1, 8, 8), 3.0)
    assert torch.allclose(resize_batch(flat, (4, 4)), torch.full((1, 1, 4, 4), 3.0))  # a constant image stays constant


def test_fixed_size_heads_are_refused_before_training():
    fixed = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 28 * 28, 10))
    with pytest.raises(ConfigError, match="train.progressive_resize: mine does not run on 20x20"):
        check_resizable(fixed, 1, (20, 20), "mine", torch.device("cpu"))
    pooled = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))
    check_resizable(pooled, 1, (20, 20), "pooled", torch.device("cpu"))
    assert pooled.training  # mode restored


def test_training_uses_each_epochs_size_then_the_full_size(tmp_path, monkeypatch):
    seen = []

    def spy(x, size):
        seen.append(tuple(size))
        return resize_batch(x, size)

    monkeypatch.setattr(loop, "resize_batch", spy)
    cfg = Config().with_overrides(
        {
            "data.subset_per_class": 10,
            "model.name": "conv(8,3)-bn-relu-gap-fc",
            "train.epochs": 4,
            "train.batch_size": 30,
            "runtime.num_threads": 1,
            "train.recipe": "none",
            "train.progressive_resize": 0.5,
            "train.progressive_end": 0.75,
            "run.runs_dir": str(tmp_path),
            "run.html_report": False,
        }
    )
    run = train(cfg, quiet=True)
    steps = run.summary["split_sizes"]["train"] // 30
    r = Resize((28, 28), 0.5, 0.75)
    assert [r.size(e, 4) for e in (1, 2, 3, 4)] == [
        (12, 12),
        (21, 21),
        (28, 28),
        (28, 28),
    ]  # multiples of 28 // 8 = 3 px
    assert seen == [(12, 12)] * steps + [(21, 21)] * steps  # epochs 3 and 4 at the full size: not resized
    assert run.summary["test"]["num_samples"] > 0
