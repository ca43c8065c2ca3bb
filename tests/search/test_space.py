import pytest

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.search.space import load_space, parse_duration, parse_param, space_from_dict


class FakeTrial:
    """Records what was asked and answers the low end / first choice."""

    def __init__(self):
        self.asked = []

    def suggest_float(self, name, low, high, log=False):
        self.asked.append(("float", name, low, high, log))
        return low

    def suggest_int(self, name, low, high, log=False):
        self.asked.append(("int", name, low, high, log))
        return low

    def suggest_categorical(self, name, choices):
        self.asked.append(("choice", name, tuple(choices)))
        return choices[0]


def test_the_issue_example_reads_as_distributions(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "params:\n  optim.lr: loguniform(1e-3, 1)\n  train.batch_size: [128, 256, 512]\n  train.epochs: int(1, 3)\n"
        "  optim.nesterov: false\nobjectives: [accuracy, macs]\nmax_macs: 5e6\ntrials: 7\ntimeout: 15m\n"
    )
    space = load_space(path)
    trial = FakeTrial()
    assert space.suggest(trial) == {
        "optim.lr": 0.001,
        "train.batch_size": 128,
        "train.epochs": 1,
        "optim.nesterov": False,
    }
    assert trial.asked == [
        ("float", "optim.lr", 0.001, 1.0, True),
        ("choice", "train.batch_size", (128, 256, 512)),
        ("int", "train.epochs", 1, 3, False),
    ]
    assert space.multi_objective and space.max_macs == 5e6 and space.trials == 7 and space.timeout == 900
    space.check(Config())  # every value is a valid config value


def test_keys_and_values_are_checked_through_the_config(tmp_path):
    space = space_from_dict({"params": {"optim.lrr": [0.1]}}, source="s.yaml")
    with pytest.raises(ConfigError, match=r"s.yaml: params: unknown key 'optim.lrr'. Did you mean 'optim.lr'"):
        space.check(Config())
    space = space_from_dict({"params": {"optim.momentum": "uniform(0.5, 1.5)"}}, source="s.yaml")
    with pytest.raises(ConfigError, match="optim.momentum"):
        space.check(Config())  # 1.5 is outside momentum's range [0, 1)


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"parms": {}}, "unknown key 'parms'. Did you mean 'params'"),
        ({"params": {"optim.lr": "loguniform(0, 1)"}}, "a log scale needs lo > 0"),
        ({"params": {"optim.lr": "uniform(1, 0.1)"}}, "needs lo < hi"),
        ({"params": {"optim.lr": "normal(0, 1)"}}, "cannot read 'normal\\(0, 1\\)'"),
        ({"params": {"train.epochs": "int(1, 2.5)"}}, "both ends must be integers"),
        ({"params": {"train.batch_size": []}}, "an empty list"),
        ({"params": {"optim.lr": [0.1]}, "objectives": ["macs"]}, "objectives: expected \\[accuracy\\]"),
        ({"params": {"optim.lr": [0.1]}, "pruner": "asha"}, "pruner: expected one of median, hyperband, none"),
        ({"params": {"optim.lr": [0.1]}, "trials": 0}, "trials: expected a whole number > 0"),
        ({"params": {"optim.lr": [0.1]}, "max_latency_ms": -1}, "max_latency_ms: expected a number > 0, got -1"),
        ({"params": {"optim.lr": [0.1]}, "objectives": ["accuracy", "speed"]}, "or \\[accuracy, latency\\]"),
        ({}, "nothing to search"),
        ({"architecture": {"kernel": [3, 4]}}, "kernel: expected an odd kernel size"),
        ({"architecture": {"kernel": "int(3, 7)"}}, "kernel: an odd kernel size"),
        ({"architecture": {"block": ["conv", "dense"]}}, "block: expected one of conv, res"),
        ({"architecture": {"depth": "int(1, 9)"}}, "depth: expected an integer from 1 to 4"),
        ({"architecture": {"heads": [2]}}, "unknown key 'heads'"),
        ({"params": {"model.name": ["x"]}, "architecture": {"width": [8]}}, "not both"),
    ],
)
def test_bad_spaces_are_errors_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        space_from_dict(raw, source="s.yaml")


def test_durations_and_fixed_values():
    assert [parse_duration(x, "t") for x in (90, "90s", "15m", "2h", "1.5m")] == [90, 90, 900, 7200, 90]
    with pytest.raises(ConfigError, match="--timeout: expected a positive duration"):
        parse_duration("soon", "--timeout")
    p = parse_param("optim.nesterov", True, "s")
    assert p.kind == "fixed" and p.suggest(FakeTrial()) is True
