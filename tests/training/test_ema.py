import pytest
import torch
from torch import nn

from cnnkit.training.ema import EMA


def test_ema_update_arithmetic():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # t=1: d = min(0.9, 2/11)
    d1 = 2 / 11
    assert float(ema.module.weight) == pytest.approx((1 - d1) * 1.0)
    for _ in range(100):
        ema.update(model)
    assert ema.current_decay() == 0.9
    assert float(ema.module.weight) == pytest.approx(1.0, abs=1e-6)
    assert model.weight.requires_grad and not ema.module.weight.requires_grad


def test_ema_copies_integer_buffers_and_round_trips():
    model = nn.BatchNorm1d(2)
    ema = EMA(model, decay=0.99)
    model.train()
    model(torch.randn(4, 2))
    ema.update(model)
    assert int(ema.module.num_batches_tracked) == 1
    other = EMA(nn.BatchNorm1d(2), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.99 and other.updates == 1
    assert torch.equal(other.module.running_mean, ema.module.running_mean)


def test_ema_rejects_bad_decay():
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(nn.Linear(1, 1), 1.0)


def test_lookahead_pulls_every_k_steps_with_a_growing_decay():
    from cnnkit.training.ema import Lookahead

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    la = Lookahead(model, total_steps=10, every=2, base=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    la.update(model)  # step 1: no pull
    assert model.weight.item() == 1.0
    la.update(model)  # step 2: d = 0.5^2 * (2/10)^3 = 0.002; slow = 0.002 * 0 + 0.998 * 1
    assert model.weight.item() == pytest.approx(0.998) and la.slow["weight"].item() == pytest.approx(0.998)
    with torch.no_grad():
        model.weight.fill_(3.0)
    la.steps = 9
    la.update(model)  # step 10: d = 0.25 * 1; slow = 0.25 * 0.998 + 0.75 * 3
    assert model.weight.item() == pytest.approx(0.25 * 0.998 + 0.75 * 3.0)
    with torch.no_grad():
        model.weight.fill_(5.0)
    la.finish(model)  # back onto the slow weights
    assert model.weight.item() == pytest.approx(0.25 * 0.998 + 0.75 * 3.0)
    restored = Lookahead(model, total_steps=1)
    restored.load_state_dict(la.state_dict())
    assert restored.steps == 10 and restored.slow["weight"].item() == pytest.approx(la.slow["weight"].item())
