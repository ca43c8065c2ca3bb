from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data.preprocess import Normalize
from cnnkit.errors import ConfigError
from cnnkit.robust.attacks import AttackSpec, fgsm, parse_eps, parse_eps_list, pgd, pixel_forward, run_attack


def test_fgsm_on_a_linear_model_is_the_closed_form():
    """Two logits w0.x, w1.x: the cross-entropy gradient for label y points along w_(1-y) - w_y, so
    FGSM moves every pixel by eps times the sign of that weight difference."""
    torch.manual_seed(0)
    lin = nn.Linear(12, 2)
    model = nn.Sequential(nn.Flatten(), lin)
    x = 0.3 + 0.4 * torch.rand(5, 3, 2, 2)  # away from 0 and 1: the clamp does not bite
    y = torch.tensor([0, 1, 0, 1, 1])
    adv = fgsm(pixel_forward(model, lambda v: v), x, y, 0.05)
    w = lin.weight.detach()
    expected = x + 0.05 * torch.sign(w[1 - y] - w[y]).view_as(x)
    assert torch.allclose(adv, expected, atol=1e-6)


def test_pgd_without_random_start_is_captums_pgd():
    from captum.robust import PGD

    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Tanh(), nn.Linear(3, 3))
    f = pixel_forward(model, lambda v: (v - 0.5) / 0.25)
    x, y = torch.rand(8, 3, 2, 2), torch.randint(0, 3, (8,))
    ours = pgd(f, x, y, 0.1, steps=5, step_size=0.03, start=False)
    theirs = PGD(f, lambda o, t: F.cross_entropy(o, t, reduction="none"), 0, 1).perturb(x, 0.1, 0.03, 5, y)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_never_leaves_the_ball_nor_the_pixel_range(norm):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 4))
    f = pixel_forward(model, Normalize([0.4, 0.5, 0.6], [0.2, 0.3, 0.25]))
    x = torch.rand(16, 3, 5, 5)
    x[:4] = x[:4].round()  # pixels at 0 and 1, where a step would leave the range
    y = torch.randint(0, 4, (16,))
    eps = 0.07 if norm == "linf" else 0.5
    for spec in (
        AttackSpec("pgd", eps, norm, steps=7, step_size=eps, restarts=3, seed=5),
        AttackSpec("fgsm", eps, norm),
    ):
        adv = run_attack(f, x, y, spec).x_adv
        assert adv.min() >= 0 and adv.max() <= 1
        d = (adv - x).flatten(1)
        size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
        assert (size <= eps + 1e-5).all(), size.max()
        assert size.max() > 0.5 * eps  # it did move


class _Shifted(nn.Module):
    """`inner` applied to inputs normalised with (m1, s1), for callers that normalise with (m2, s2): the same function of the pixels."""

    def __init__(self, inner, m1, s1, m2, s2):
        super().__init__()
        self.inner, self.a, self.b = inner, s2 / s1, (m2 - m1) / s1

    def forward(self, z):
        return self.inner(z * self.a + self.b)


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_eps_in_pixel_units_is_the_same_attack_whatever_the_normalisation(method):
    """Two checkpoints computing the same function of the pixels with different mean/std get the
    same adversarial images, each pixel moved by at most eps of the 0-1 image. Attacking the
    normalised tensor (the classic bug) would move pixels by eps * std instead."""
    torch.manual_seed(3)
    inner = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    m1, s1, m2, s2 = 0.5, 0.5, 0.1, 0.05
    a = pixel_forward(inner, Normalize([m1] * 3, [s1] * 3))
    b = pixel_forward(_Shifted(inner, m1, s1, m2, s2), Normalize([m2] * 3, [s2] * 3))
    x, y = 0.2 + 0.6 * torch.rand(6, 3, 4, 4), torch.randint(0, 5, (6,))
    assert torch.allclose(a(x), b(x), atol=1e-4)
    spec = AttackSpec(method, 4 / 255, steps=5, seed=1)
    adv_a, adv_b = run_attack(a, x, y, spec).x_adv, run_attack(b, x, y, spec).x_adv
    assert torch.allclose(adv_a, adv_b, atol=1e-5)
    linf = (adv_a - x).abs().max().item()
    assert linf == pytest.approx(4 / 255, abs=1e-6)  # not 4/255 * 0.05 (std 2) nor * 0.5


def test_restarts_keep_the_first_success_and_are_counted():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    f = pixel_forward(model, lambda v: v)
    x = torch.rand(10, 3, 2, 2)
    y = model(x.flatten(1)).argmax(1).detach()  # the model's own answers: all correct before the attack
    weak = AttackSpec("pgd", 0.02, steps=1, step_size=0.005, restarts=4, seed=0)
    r = run_attack(f, x, y, weak)
    assert 1 <= r.restarts_used <= 4
    assert r.restarts_used == 4 or r.success.all()
    one = run_attack(f, x, y, AttackSpec("pgd", 0.02, steps=1, step_size=0.005, restarts=1, seed=0))
    assert one.restarts_used == 1
    assert r.success.sum() >= one.success.sum()  # restarts only add successes
    strong = run_attack(f, x, y, AttackSpec("pgd", 1.0, steps=5, restarts=3, seed=0))
    assert strong.success.all() and strong.restarts_used == 1  # all fooled at once: no further restart


def test_attacks_are_seeded():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    f = pixel_forward(model, lambda v: v)
    x, y = torch.rand(4, 3, 2, 2), torch.randint(0, 3, (4,))
    same = [run_attack(f, x, y, AttackSpec("pgd", 0.1, steps=2, step_size=0.01, seed=7)).x_adv for _ in range(2)]
    other = run_attack(f, x, y, AttackSpec("pgd", 0.1, steps=2, step_size=0.01, seed=8)).x_adv
    assert torch.equal(same[0], same[1]) and not torch.equal(same[0], other)


def test_targeted_attack_reaches_the_target():
    torch.manual_seed(6)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    f = pixel_forward(model, lambda v: v)
    x = torch.rand(8, 3, 2, 2)
    target = torch.full((8,), 2)
    r = run_attack(f, x, target, AttackSpec("pgd", 0.5, steps=20, targeted=True))
    assert (r.logits_adv.argmax(1) == 2).all() and r.success.all()


def test_parse_eps_accepts_fractions_and_decimals():
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps("0.1") == 0.1 and parse_eps(" 0 ") == 0.0
    assert parse_eps_list("0.2, 0, 2/255,0.2") == pytest.approx([0, 2 / 255, 0.2])


@pytest.mark.parametrize(
    "text, why",
    [("-0.1", ">= 0"), ("8", "<= 1"), ("eight", "not a number"), ("1/0", "not a number"), ("nan", ">= 0")],
)
def test_parse_eps_errors_name_the_flag(text, why):
    with pytest.raises(ConfigError, match=rf"--adv-eps '{text}': .*{why}"):
        parse_eps(text, "--adv-eps")


def test_spec_errors_name_the_flag():
    with pytest.raises(ConfigError, match="--restarts 3: FGSM has no random start"):
        AttackSpec("fgsm", 0.1, restarts=3)
    with pytest.raises(ConfigError, match="--norm 'l1'"):
        AttackSpec("pgd", 0.1, norm="l1")
    with pytest.raises(ConfigError, match="--eps 2"):
        AttackSpec("pgd", 2)
