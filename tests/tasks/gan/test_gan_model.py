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


def test_a_conditional_pair_reads_the_labels():
    torch.manual_seed(0)
    g, d = build_pair(latent=6, channels=1, side=8, width=4, num_classes=3)
    assert g.net[0].in_channels == 6 + 3 and d.net[0].in_channels == 1 + 3  # z + one-hot, image + 3 label maps
    g.eval()
    z = torch.randn(2, 6)
    a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([2, 0]))
    assert a.shape == (2, 1, 8, 8) and not torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert d(a, torch.tensor([1, 2])).shape == (2,)
    with pytest.raises(ValueError, match="needs the labels"):
        g(z)


def test_spectral_norm_bounds_each_discriminator_convolution():
    torch.manual_seed(0)
    _, d = build_pair(latent=6, channels=1, side=16, width=4, spectral_norm=True)
    convs = [m for m in d.net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    d.train()
    for _ in range(30):  # each forward pass refines the power iteration's estimate
        d(torch.randn(2, 1, 16, 16))
    d.eval()
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    _, plain = build_pair(latent=6, channels=1, side=16, width=4)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in plain.net)
