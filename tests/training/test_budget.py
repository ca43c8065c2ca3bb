import math
import types

import pytest

from cnnkit.checkpoint import load_checkpoint
from cnnkit.cli import build_parser
from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training import trainer as trainer_module
from cnnkit.training.budget import TimeBudget, parse_duration
from cnnkit.training.optim import warmup_linear

TINY = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
    "train.batch_size": 10,
    "runtime.num_threads": 1,
    "train.recipe": "none",
    "run.html_report": False,
}


@pytest.mark.parametrize(
    "text, seconds", [(600, 600.0), ("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), (" 2.5 m ", 150.0)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["ten minutes", "10d", "-5", "", "5mm"])
def test_parse_duration_rejects_with_the_key_and_the_forms(bad):
    with pytest.raises(ConfigError, match=r"train.time_budget.*(10m|>= 0)"):
        parse_duration(bad)


def test_cli_flag_sets_seconds_and_names_the_flag_on_error(capsys):
    args = build_parser().parse_args(["train", "--time-budget", "10m"])
    assert args.time_budget == 600.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--time-budget", "soon"])
    assert "--time-budget" in capsys.readouterr().err


def test_first_plan_from_the_early_steps_then_from_the_whole_run():
    b = TimeBudget(10.0, steps_per_epoch=40, initial_total=80)
    assert b.total == 80 and not b.planned
    for step in range(1, 13):  # 0.1 s per step; the first two are the warm-up
        b.observe(step, 0.1 * step)
    assert b.planned and b.total == 12 + round((10.0 - 1.2) / 0.1)  # 100 steps in 10 s
    b.end_epoch(40, 5.0)  # slower than planned (validation, checkpoints): 0.125 s per step
    assert b.total == 40 + 40 and b.epochs == 2
    b.end_epoch(60, 9.0)  # the latest 20 steps took 0.2 s each: one more second holds 5 steps
    assert (
        b.total == 65
        and b.epochs == 2
        and b.steps_in_epoch(1) == 40
        and b.steps_in_epoch(2) == 25
        and b.steps_in_epoch(3) == 0
    )


def test_plan_counts_cheaper_small_epochs():
    """Progressive resizing: epoch 1 steps cost a quarter, epoch 2 half, later ones full."""
    work = lambda epoch, epochs: {1: 0.25, 2: 0.5}.get(epoch, 1.0)  # noqa: E731
    b = TimeBudget(10.0, steps_per_epoch=10, initial_total=30, work=work)
    b.end_epoch(10, 0.25)  # epoch 1: 10 steps of 0.025 s, i.e. 0.1 s per full-size step
    # the remaining 9.75 s: epoch 2 (10 x 0.05 s = 0.5 s) then full-size steps of 0.1 s: 92 of them
    assert b.total == 10 + 10 + 92
    state = b.state_dict()
    c = TimeBudget(10.0, steps_per_epoch=10, initial_total=30, work=work)
    c.load_state_dict(state)
    c.end_epoch(20, 0.75)  # epoch 2 took 0.5 s as predicted: the plan stands
    assert c.total == b.total


def test_budget_spent_ends_at_the_steps_done_and_state_round_trips():
    b = TimeBudget(1.0, steps_per_epoch=10, initial_total=100)
    b.end_epoch(10, 2.0)  # over budget already: no more steps
    assert b.total == 10 and b.epochs == 1
    c = TimeBudget(1.0, steps_per_epoch=10, initial_total=100)
    c.load_state_dict(b.state_dict())
    assert c.total == 10 and c.planned


def test_train_fills_the_budget_and_ends_the_schedule_on_it(tmp_path, monkeypatch):
    """A fake clock (0.1 s per optimiser step, nothing else takes time): a 2.95 s budget holds
    about 29 steps; the run stops there, mid-epoch, with the triangle schedule at its end."""
    clock = [0.0]
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def tick(epoch, step, loss):
        clock[0] += 0.1

    cfg = Config().with_overrides(
        {
            **TINY,
            "run.runs_dir": str(tmp_path),
            "train.time_budget": 2.95,
            "train.epochs": 50,
            "train.lookahead": True,
            "optim.lr": 0.1,
            "schedule.name": "triangle",
            "schedule.initial_factor": 0.2,
            "schedule.final_factor": 0.07,
            "schedule.warmup_fraction": 0.23,
        }
    )
    run = trainer_module.train(cfg, quiet=True, on_step=tick)
    s = run.summary
    spe = s["split_sizes"]["train"] // 10
    assert s["time_budget"] == 2.95 and 28 <= s["steps"] <= 30  # 29 steps of 0.1 s in 2.95 s
    assert (
        s["epochs"] == s["epochs_run"] == len(run.metrics) == math.ceil(s["steps"] / spe) < 50
    )  # epochs is not what ends it
    assert s["steps"] % spe != 0  # the last epoch is partial
    # the rate at the last epoch's start is where the triangle planned over the budget's steps puts it
    start = (s["epochs"] - 1) * spe
    expected = 0.1 * warmup_linear(start, s["steps"], int(s["steps"] * 0.23), 0.2, 0.07)
    assert run.metrics[-1]["lr"] == pytest.approx(expected, rel=0.02)
    state = load_checkpoint(run.dir / "last.ckpt")["train_state"]
    assert {k: state["budget"][k] for k in ("seconds", "total", "planned")} == {
        "seconds": 2.95,
        "total": s["steps"],
        "planned": True,
    }
    assert state["lookahead"]["total"] == s["steps"]


def test_negative_budget_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="train.time_budget"):
        trainer_module.train(
            Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path), "train.time_budget": -1.0}), quiet=True
        )


def test_a_limit_never_plans_more_than_the_epochs():
    """train.time_limit: a fast machine keeps the epochs' steps; a slow one gets fewer, ending in time."""
    fast = TimeBudget(10.0, steps_per_epoch=10, initial_total=30, ceiling=True)
    fast.end_epoch(10, 0.5)  # 0.05 s a step: 190 more would fit, the epochs hold 20
    assert fast.total == 30 and fast.epochs == 3
    slow = TimeBudget(10.0, steps_per_epoch=10, initial_total=30, ceiling=True)
    slow.end_epoch(10, 5.0)  # 0.5 s a step: 10 more fit
    assert slow.total == 20 and slow.epochs == 2


def test_cli_time_limit_flag_and_a_limit_with_a_budget_is_an_error(tmp_path):
    from cnnkit.training.flags import build_config

    args = build_parser().parse_args(["train", "--dataset", "mnist-mini", "--time-limit", "2m"])
    assert build_config(args).train.time_limit == 120.0
    cfg = Config().with_overrides(
        {**TINY, "run.runs_dir": str(tmp_path), "train.time_budget": 60.0, "train.time_limit": 60.0}
    )
    with pytest.raises(ConfigError, match=r"train.time_budget .* and train.time_limit .* set one"):
        trainer_module.train(cfg, quiet=True)


def test_train_under_a_limit_keeps_the_epochs_when_they_fit_and_shortens_them_when_not(tmp_path, monkeypatch):
    """A fake clock, 0.1 s per optimiser step: 4 epochs of 2 steps (0.8 s) fit a 5 s limit and run
    whole; under a 0.55 s limit the schedule is planned to end after about 5 steps."""
    clock = [0.0]
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def tick(epoch, step, loss):
        clock[0] += 0.1

    def run(limit, name):
        cfg = Config().with_overrides(
            {**TINY, "run.runs_dir": str(tmp_path), "run.name": name, "train.time_limit": limit, "train.epochs": 4}
        )
        return trainer_module.train(cfg, quiet=True, on_step=tick).summary

    roomy = run(5.0, "roomy")
    spe = roomy["split_sizes"]["train"] // 10
    assert roomy["time_limit"] == 5.0 and roomy["epochs_run"] == 4 and roomy["steps"] == 4 * spe
    tight = run(0.55, "tight")
    assert tight["steps"] < 4 * spe and tight["epochs_run"] < 4 and tight["time_budget"] is None
