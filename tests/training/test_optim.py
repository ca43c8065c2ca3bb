import pytest
import torch

from cnnkit.config import OptimConfig, ScheduleConfig
from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.training.optim import build_optimizer, build_scheduler


def _model():
    return create_model("simple_cnn", num_classes=3, in_chans=1, width=4, stages=1, depth=1)


def test_no_weight_decay_on_norms_and_biases():
    opt = build_optimizer(_model(), OptimConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and all(p.ndim > 1 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])
    assert opt.defaults["nesterov"] is True


def test_adamw_and_unknown_optimiser():
    assert isinstance(build_optimizer(_model(), OptimConfig(name="adamw", lr=1e-3)), torch.optim.AdamW)
    with pytest.raises(ConfigError, match="unknown optimiser 'adam'"):
        build_optimizer(_model(), OptimConfig(name="adam"))


def _lrs(name, steps=100, warmup=0.2):
    opt = build_optimizer(_model(), OptimConfig(lr=1.0))
    sched = build_scheduler(opt, ScheduleConfig(name=name, warmup_fraction=warmup), steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_onecycle_peaks_at_lr_after_warmup():
    lrs = _lrs("onecycle")
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert abs(lrs[peak] - 1.0) < 1e-6 and 15 <= peak <= 25
    assert lrs[0] < 0.1 and lrs[-1] < 0.01


def test_cosine_with_warmup():
    lrs = _lrs("cosine")
    assert lrs[0] == pytest.approx(0.05) and lrs[19] < 1.0 and lrs[20] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5, abs=0.05) and lrs[-1] < 0.01


def test_unknown_schedule():
    opt = build_optimizer(_model(), OptimConfig())
    with pytest.raises(ConfigError, match="unknown schedule 'step'"):
        build_scheduler(opt, ScheduleConfig(name="step"), 10)
