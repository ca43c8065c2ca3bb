import contextlib

import pytest
import torch

from cnnkit.tasks.gan.model import build_pair
from cnnkit.tasks.gan.run import sample
from cnnkit.tasks.gan.step import STEP_KEYS, gan_step, to_tanh_range


def _setup(seed=0):
    torch.manual_seed(seed)
    g, d = build_pair(16, 1, 8, 8)
    opt = lambda m: torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999))  # noqa: E731
    return g, d, opt(g), opt(d)


def _images(n=512):
    x = torch.randint(0, 40, (n, 1, 8, 8), dtype=torch.uint8)
    x[:, :, :4] = 230  # every image: bright top half, dark bottom half
    return x


def test_to_tanh_range():
    assert to_tanh_range(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]


def test_one_step_updates_both_networks_and_reports_probabilities():
    g, d, og, od = _setup()
    g0, d0 = [p.clone() for p in g.parameters()], [p.clone() for p in d.parameters()]
    r = gan_step(g, d, og, od, to_tanh_range(_images(8)), torch.randn(8, 16), contextlib.nullcontext)
    assert list(r) == list(STEP_KEYS) and 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1
    assert r["loss_d"] == pytest.approx(2 * 0.693, abs=0.05) and r["loss_g"] == pytest.approx(
        0.693, abs=0.05
    )  # at init D ~ 0.5
    assert all(not torch.equal(a, b) for a, b in zip(g0, g.parameters(), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(d0, d.parameters(), strict=True))


@pytest.mark.slow
def test_the_generator_learns_the_layout_of_the_data():
    torch.manual_seed(0)
    x = _images()
    g, d = build_pair(16, 1, 8, 8)
    og, od = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (g, d))
    for _ in range(300):
        idx = torch.randint(0, x.shape[0], (32,))
        gan_step(g, d, og, od, to_tanh_range(x[idx]), torch.randn(32, 16), contextlib.nullcontext)
    out = sample(g, torch.randn(64, 16))
    top, bottom = out[:, :, :4].mean().item(), out[:, :, 4:].mean().item()
    assert top - bottom > 0.4, (top, bottom)  # bright top, dark bottom (both ~0 at init; 0.34 / -0.43 seen)


def test_hinge_and_bce_losses_on_hand_values():
    from cnnkit.tasks.gan.step import d_loss, g_loss

    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_loss("hinge", real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)  # relu(1-r), relu(1+f)
    assert g_loss("hinge", torch.tensor([1.0, -3.0])).item() == pytest.approx(1.0)  # -mean
    zero = torch.zeros(3)
    assert d_loss("bce", zero, zero).item() == pytest.approx(2 * 0.6931, abs=1e-4)  # -log 0.5 twice
    assert g_loss("bce", torch.tensor([0.0])).item() == pytest.approx(0.6931, abs=1e-4)


def test_a_conditional_hinge_step_trains_both_networks():
    torch.manual_seed(0)
    g, d = build_pair(16, 1, 8, 8, num_classes=2, spectral_norm=True)
    og, od = (torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999)) for m in (g, d))
    g0 = [p.clone() for p in g.parameters()]
    labels = torch.tensor([0, 1, 0, 1])
    r = gan_step(g, d, og, od, to_tanh_range(_images(4)), torch.randn(4, 16), contextlib.nullcontext, labels, "hinge")
    assert r["loss_d"] == pytest.approx(2.0, abs=0.2) and r["loss_g"] == pytest.approx(0.0, abs=0.2)  # D ~ 0 at init
    assert all(not torch.equal(a, b) for a, b in zip(g0, g.parameters(), strict=True))
