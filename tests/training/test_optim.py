import pytest
import torch
from torch import nn

from cnnkit.config import Config, OptimConfig, ScheduleConfig
from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.training.loop import l1_penalty
from cnnkit.training.optim import build_optimizer, build_scheduler, l1_parameters, param_groups


def _model():
    return create_model("simple_cnn", num_classes=3, in_chans=1, width=4, stages=1, depth=1)


def test_no_weight_decay_on_norms_and_biases():
    opt = build_optimizer(_model(), OptimConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and all(p.ndim > 1 for p in decay["params"])
    assert no_decay["weight_decay"] == 0.0 and all(p.ndim == 1 for p in no_decay["params"])
    assert opt.defaults["nesterov"] is True


@pytest.mark.parametrize(
    "name, cls",
    [
        ("sgd", torch.optim.SGD),
        ("adamw", torch.optim.AdamW),
        ("adam", torch.optim.Adam),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_optimisers(name, cls):
    opt = build_optimizer(_model(), OptimConfig(name=name, lr=1e-3, momentum=0.5))
    assert type(opt) is cls and opt.param_groups[0]["lr"] == 1e-3
    if name in ("sgd", "rmsprop"):
        assert opt.param_groups[0]["momentum"] == 0.5


def test_unknown_optimiser():
    with pytest.raises(ConfigError, match="'optim.name': 'lion' is not one of sgd, adamw, adam, rmsprop"):
        Config().with_overrides({"optim.name": "lion"})  # the config loader checks the closed set (a Literal)


def test_per_group_learning_rates_for_discriminative_fine_tuning():
    model = _model()
    groups = [{"params": model.features.parameters(), "lr_scale": 0.1, "name": "backbone"}]
    opt = build_optimizer(model, OptimConfig(lr=1.0, weight_decay=0.01), groups)
    by = {(g.get("name"), g["weight_decay"]): g for g in opt.param_groups}
    assert by[("backbone", 0.01)]["lr"] == pytest.approx(0.1) and by[("backbone", 0.0)]["lr"] == pytest.approx(0.1)
    head = [g for g in opt.param_groups if g.get("name") is None]
    assert {g["lr"] for g in head} == {1.0}  # the head (not in any group) gets the base rate
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    sched = build_scheduler(opt, ScheduleConfig(name="constant"), 10)
    opt.step()
    sched.step()
    assert by[("backbone", 0.01)]["lr"] == pytest.approx(0.1)  # the schedule scales each group's own rate


def test_param_groups_keep_every_parameter_once():
    model = _model()
    pg = param_groups(model, 0.5)
    ids = [id(p) for g in pg for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_l1_penalty_changes_the_loss_by_the_expected_amount():
    model = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model[0].bias.fill_(3.0)
    params = l1_parameters(model)
    assert len(params) == 1  # weights only, never the bias
    assert float(l1_penalty(params, 0.1).detach()) == pytest.approx(0.1 * 3.5)
    assert l1_parameters(model, "nomatch*") == []


def _lrs(name, steps=100, warmup=0.2, **kw):
    opt = build_optimizer(_model(), OptimConfig(lr=1.0))
    sched = build_scheduler(opt, ScheduleConfig(name=name, warmup_fraction=warmup, **kw), steps, steps_per_epoch=10)
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


def test_step_schedule():
    lrs = _lrs("step", step_epochs=3, gamma=0.5)  # 10 steps per epoch: halve every 30 steps
    assert (
        lrs[0] == lrs[29] == 1.0
        and lrs[30] == pytest.approx(0.5)
        and lrs[60] == pytest.approx(0.25)
        and lrs[99] == pytest.approx(0.125)
    )


def test_reduce_on_plateau_is_per_epoch():
    opt = build_optimizer(_model(), OptimConfig(lr=1.0))
    sched = build_scheduler(
        opt, ScheduleConfig(name="plateau", plateau_patience=1, plateau_factor=0.1), 100, mode="max"
    )
    for acc in (0.5, 0.6, 0.6):  # one epoch without improvement: patience 1 not yet exceeded
        sched.step(acc)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
    sched.step(0.6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_unknown_schedule():
    with pytest.raises(ConfigError, match="'schedule.name': 'linear' is not one of onecycle, triangle"):
        Config().with_overrides({"schedule.name": "linear"})


def test_triangle_schedule_rises_and_falls_linearly():
    lrs = _lrs("triangle", warmup=0.25, initial_factor=0.2, final_factor=0.07)
    assert lrs[0] == pytest.approx(0.2) and lrs[25] == pytest.approx(1.0)
    assert lrs[12] == pytest.approx(0.2 + 0.8 * 12 / 25)  # linear rise
    assert lrs[50] == pytest.approx(1.0 - 0.93 * 25 / 75) and lrs[-1] == pytest.approx(
        1.0 - 0.93 * 74 / 75
    )  # linear fall toward 0.07


def test_bias_lr_scale_multiplies_the_rate_of_norm_layers_only():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, bias=True), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(3)
    )
    model(torch.zeros(1, 1, 5, 5))
    opt = build_optimizer(model, OptimConfig(lr=0.1, bias_lr_scale=64.0))
    decay, norms, biases = opt.param_groups
    assert (
        decay["lr"] == pytest.approx(0.1) and norms["lr"] == pytest.approx(6.4) and biases["lr"] == pytest.approx(0.1)
    )
    assert {id(p) for p in norms["params"]} == {id(model[1].weight), id(model[1].bias)}  # batch norm's scale and shift
    assert {id(p) for p in biases["params"]} == {
        id(model[0].bias),
        id(model[3].bias),
    }  # the conv's and the head's biases: base rate
    assert norms["weight_decay"] == biases["weight_decay"] == 0.0
    with pytest.raises(ConfigError, match="bias_lr_scale"):
        build_optimizer(_model(), OptimConfig(bias_lr_scale=0.0))
