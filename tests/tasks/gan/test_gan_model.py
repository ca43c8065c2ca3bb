import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.tasks.gan.model import Discriminator, Generator, build_pair, plan_sizes


@pytest.mark.parametrize("side, plan", [(8, (4, 1)), (16, (4, 2)), (28, (7, 2)), (32, (4, 3)), (64, (4, 4))])
def test_plan_sizes(side, plan):
    assert plan_sizes(side) == plan


def test_plan_sizes_refuses_other_sides():
    with pytest.raises(ConfigError, match="got 30 px"):
        plan_sizes(30)


@pytest.mark.parametrize("side, channels", [(8, 1), (16, 3), (28, 1), (32, 3), (64, 1)])
def test_shapes_and_tanh_range(side, channels):
    g, d = build_pair(latent=10, channels=channels, side=side, width=4)
    x = g(torch.randn(3, 10))
    assert x.shape == (3, channels, side, side)
    assert x.abs().max() <= 1.0
    assert d(x).shape == (3,)


def test_layers_follow_the_paper():
    g, d = Generator(10, 1, 32, 8), Discriminator(1, 32, 8)
    kinds_g = [type(m).__name__ for m in g.net]
    assert kinds_g == ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 3 + ["ConvTranspose2d", "Tanh"]
    assert g.net[0].out_channels == 32  # 4w at 4x4 for 32 px
    kinds_d = [type(m).__name__ for m in d.net]
    assert kinds_d == ["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 2 + [
        "Conv2d"
    ]  # no BN on input
    assert d.net[1].negative_slope == 0.2
    assert [m.stride for m in d.net if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 3 + [(1, 1)]


def test_init_is_the_papers():
    torch.manual_seed(0)
    g, d = build_pair(latent=100, channels=1, side=64, width=32)
    w = torch.cat(
        [
            m.weight.flatten()
            for m in [*g.modules(), *d.modules()]
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
        ]
    )
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 5e-4
    bn = [m for m in [*g.modules(), *d.modules()] if isinstance(m, torch.nn.BatchNorm2d)]
    scales = torch.cat([m.weight for m in bn])
    assert abs(scales.mean().item() - 1.0) < 0.01 and 0.01 < scales.std().item() < 0.03
    assert all(m.bias.abs().max() == 0 for m in bn)
