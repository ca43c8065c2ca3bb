"""Numbers are checked where they enter: the ranges declared in the config's types, and flag types."""

import argparse
import dataclasses
import math
import types
import typing

import pytest

from cnnkit.cli import main
from cnnkit.config import Config, ConfigError
from cnnkit.ranges import Range, flag_type, ranged


def _numeric_keys():
    """(dotted key, base type, Range) for every int/float config key."""
    out = []
    for group in dataclasses.fields(Config):
        cls = group.default_factory
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            base = typing.get_args(tp)[0] if ranged(tp) else tp
            args = typing.get_args(base) if typing.get_origin(base) in (typing.Union, types.UnionType) else (base,)
            number = next((a for a in args if a in (int, float)), None)
            if number is not None and bool not in args:
                out.append((f"{group.name}.{f.name}", number, ranged(tp)))
    return out


NUMERIC = _numeric_keys()


def _default(key):
    group, name = key.split(".")
    return getattr(getattr(Config(), group), name)


def test_every_numeric_key_declares_a_range():
    assert len(NUMERIC) > 40  # data, model, optim, schedule, augment and train numbers
    assert [k for k, _, r in NUMERIC if r is None] == []


@pytest.mark.parametrize("key,number,rng", NUMERIC, ids=[k for k, _, _ in NUMERIC])
def test_default_inside_and_out_of_range_refused(key, number, rng):
    default = _default(key)
    assert default is None or default in rng
    if rng.hi is not None:
        bad = rng.hi if rng.hi_open else rng.hi + 1
    else:
        bad = rng.lo if rng.lo_open else rng.lo - 1
    bad = number(bad)
    with pytest.raises(ConfigError) as e:
        Config().with_overrides({key: bad}, source="--set")
    assert f"'{key}'" in str(e.value) and rng.text() in str(e.value) and repr(bad) in str(e.value)
    if number is float:
        for value in (math.nan, math.inf, -math.inf):
            with pytest.raises(ConfigError, match="must be"):
                Config().with_overrides({key: value})


def test_yaml_file_is_checked_too(tmp_path):
    from cnnkit.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  momentum: 1.0\n")
    with pytest.raises(ConfigError, match=r"c.yaml 'optim.momentum': must be in \[0, 1\), got 1.0"):
        load_config(path)


def test_range_text_and_membership():
    assert Range(0, 10).text() == "[0, 10]" and Range(0, 1, hi_open=True).text() == "[0, 1)"
    assert Range(1).text() == ">= 1" and Range(0, lo_open=True).text() == "> 0"
    assert (
        0 in Range(0, 1)
        and 1 not in Range(0, 1, hi_open=True)
        and True not in Range(0, 1)
        and float("nan") not in Range()
    )
    with pytest.raises(ConfigError, match=r"x: must be > 0 \(0: off\), got -1"):
        Range(0, lo_open=True, note="0: off").check(-1, "x")


def test_flag_type_refuses_with_the_same_message():
    parse = flag_type(Range(1))
    assert parse("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="must be >= 1, got 0"):
        parse("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer, got 'x'"):
        parse("x")
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \[0, 1\], got nan"):
        flag_type(Range(0, 1), float)("nan")


# Issue 21, rows 10-12: each refused before anything runs, naming the flag and its range.
@pytest.mark.parametrize(
    "flag,value,expected",
    [
        ("--lr", "1e308", "--lr 'optim.lr': must be in [0, 10] (the peak learning rate), got 1e+308"),  # row 10
        ("--lr", "-1", "--lr 'optim.lr': must be in [0, 10]"),  # row 10
        ("--label-smoothing", "2", "--label-smoothing 'optim.label_smoothing': must be in [0, 1), got 2.0"),  # row 10
        ("--threads", "-3", "--threads 'runtime.num_threads': must be in [1, 1024], got -3"),  # row 10
        ("--grad-clip", "-1", "--grad-clip 'optim.grad_clip': must be >= 0 (0 or null: off), got -1.0"),  # row 11
        ("--label-smoothing", "nan", "--label-smoothing 'optim.label_smoothing': must be in [0, 1), got nan"),  # row 11
        ("--lr", "nan", "--lr 'optim.lr': must be in [0, 10] (the peak learning rate), got nan"),  # row 12
    ],
)
def test_train_flags_out_of_range(flag, value, expected, tmp_path, capsys):
    assert main(["train", flag, value, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_set_names_the_key(tmp_path, capsys):
    assert main(["train", "--set", "optim.momentum=-0.5", "--runs-dir", str(tmp_path)]) == 2
    assert "--set/flag 'optim.momentum': must be in [0, 1), got -0.5" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["predict", "x.ckpt", "a.png", "--top-k", "0"], "argument --top-k: must be >= 1, got 0"),  # row 16
        (["predict", "x.ckpt", "a.png", "--threshold", "1.5"], "argument --threshold: must be in [0, 1], got 1.5"),
        (["evaluate", "x.ckpt", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["featuremaps", "x.ckpt", "a.png", "--max-channels", "-1"], "argument --max-channels: must be >= 1, got -1"),
        (["filters", "x.ckpt", "--steps", "0"], "argument --steps: must be >= 1, got 0"),
    ],
)
def test_other_verbs_flags_out_of_range(argv, expected, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and expected in capsys.readouterr().err


@pytest.mark.parametrize("preset", ["light", "standard", "strong"])
@pytest.mark.parametrize("dataset,size", [("mnist", 28), ("cifar10", 32), ("folder", 224)])
def test_recipes_and_augment_presets_stay_inside_the_ranges(preset, dataset, size):
    """Presets set keys with dataclasses.replace (no loader): their values must fit the declared ranges too."""
    from cnnkit.data.presets import preset_overrides
    from cnnkit.training.recipes import RECIPES

    overrides = {f"augment.{k}": v for k, v in preset_overrides(preset, dataset=dataset, image_size=size).items()}
    cfg = Config().with_overrides(overrides, source=preset)  # raises ConfigError for a value out of its range
    assert all(getattr(cfg.augment, key.split(".", 1)[1]) == v for key, v in overrides.items())
    for recipe in RECIPES.values():
        cfg = Config().with_overrides(recipe.overrides, source=recipe.name)
        for key, v in recipe.overrides.items():
            group, name = key.split(".", 1)
            assert getattr(getattr(cfg, group), name) == v, (recipe.name, key)
