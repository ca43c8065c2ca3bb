import contextlib

import pytest
import torch

from cnnkit.tasks.gan.ema import ema_copy, ema_update
from cnnkit.tasks.gan.model import build_pair
from cnnkit.tasks.gan.step import gan_step, to_tanh_range


def test_ema_weights_equal_the_hand_computed_average_after_two_steps():
    torch.manual_seed(0)
    g, d = build_pair(6, 1, 8, 4)
    og, od = (torch.optim.Adam(m.parameters(), 1e-2, betas=(0.5, 0.999)) for m in (g, d))
    ema, decay = ema_copy(g), 0.9
    w = [{k: v.clone() for k, v in g.named_parameters()}]
    for _ in range(2):
        real = to_tanh_range(torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8))
        gan_step(g, d, og, od, real, torch.randn(4, 6), contextlib.nullcontext)
        ema_update(ema, g, decay)
        w.append({k: v.clone() for k, v in g.named_parameters()})
    got = dict(ema.named_parameters())
    for k in w[0]:
        hand = decay * (decay * w[0][k] + (1 - decay) * w[1][k]) + (1 - decay) * w[2][k]
        assert torch.allclose(got[k], hand, atol=1e-7), k
        assert not torch.allclose(got[k], w[2][k])  # an average, not the last weights
    bn = next(m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn_ema = next(m for m in ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(bn.running_mean, bn_ema.running_mean)  # statistics copied, not averaged
    assert not any(p.requires_grad for p in ema.parameters())


def test_ema_is_saved_and_used_by_generate(tmp_path):
    from tests.tasks.gan.test_gan_run import tiny_cfg

    from cnnkit.tasks.gan.generate import load_generator
    from cnnkit.tasks.gan.run import load_gan_checkpoint
    from cnnkit.training.trainer import train

    run = train(tiny_cfg(tmp_path, epochs=1, ema=0.5), quiet=True)
    ts = load_gan_checkpoint(run.dir / "last.ckpt")["train_state"]
    assert ts["generator_ema"] is not None
    loaded = load_generator(run.dir).state_dict()
    key = "net.0.weight"
    assert torch.equal(loaded[key], ts["generator_ema"][key]) and not torch.equal(loaded[key], ts["generator_net"][key])
    raw = load_generator(run.dir, ema=False).state_dict()  # the bench scores both
    assert torch.equal(raw[key], ts["generator_net"][key])
    with pytest.raises(Exception, match="gan.ema"):
        tiny_cfg(tmp_path, ema=1.0)
