from pathlib import Path

import pytest

from cnnkit.config import MOVED, Config, ConfigError, all_keys, load_config, save_config


def test_defaults_are_the_mnist_mini_recipe():
    cfg = Config()
    assert cfg.data.dataset == "mnist-mini"
    assert cfg.model.name == "auto" and cfg.train.recipe == "auto"  # mnist-mini's recipe makes it fastnet_t
    assert cfg.train.epochs == 8 and cfg.optim.lr == 0.2


def test_yaml_round_trip(tmp_path):
    cfg = Config().with_overrides(
        {"optim.lr": 0.05, "model.name": "simple_cnn", "model.kwargs": {"width": 8}, "run.name": "x"}
    )
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_unknown_nested_key_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr'.*Did you mean 'optim.lr'"):
        Config.from_dict({"optim": {"lrr": 0.1}})


def test_unknown_group_suggests_the_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'trian'.*Did you mean 'train'"):
        Config.from_dict({"trian": {"epochs": 1}})


def test_typo_in_yaml_file_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'train.epoch'.*Did you mean 'train.epochs'"):
        load_config(p)


@pytest.mark.parametrize(
    "key,value",
    [
        ("train.epochs", "three"),
        ("train.epochs", 2.5),
        ("optim.lr", "fast"),
        ("augment.hflip", 1),
        ("train.epochs", True),
    ],
)
def test_wrong_type_is_rejected_with_the_key(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ".*expected"):
        Config().with_overrides({key: value})


def test_int_is_accepted_for_float_and_null_for_optional():
    cfg = Config().with_overrides({"optim.lr": 1, "data.image_size": None, "data.channels": 3})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.data.channels == 3


def test_all_keys_lists_dotted_keys():
    keys = all_keys()
    assert "optim.lr" in keys and "run.runs_dir" in keys and "data.subset_per_class" in keys


def test_group_given_a_scalar_is_an_error():
    with pytest.raises(ConfigError, match="optim.*expected a mapping"):
        Config.from_dict({"optim": 3})


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_config_yaml_from_before_the_split_loads_into_the_new_groups():
    """tests/fixtures/config_before_split.yaml was written by Config().to_dict() before `train` was split."""
    cfg = load_config(FIXTURES / "config_before_split.yaml")
    assert (cfg.runtime.device, cfg.runtime.precision, cfg.runtime.num_threads, cfg.runtime.devices) == (
        "cpu",
        "bf16",
        3,
        2,
    )
    assert (cfg.runtime.compile, cfg.runtime.deterministic, cfg.runtime.channels_last) == (True, False, False)
    assert (cfg.eval.batch_size, cfg.eval.tta, cfg.run.tensorboard) == (123, "flip", True)
    assert (cfg.train.epochs, cfg.train.on_nan, cfg.optim.lr) == (5, "skip", 0.05)  # keys that stayed
    assert cfg == Config.from_dict(cfg.to_dict())  # and it saves in the new layout
    assert "device" not in cfg.to_dict()["train"] and cfg.to_dict()["runtime"]["device"] == "cpu"


NON_DEFAULT = {  # a value other than the default for each moved key
    "eval.batch_size": 7,
    "eval.tta": "flip+shift",
    "runtime.device": "cpu",
    "runtime.precision": "bf16",
    "runtime.channels_last": False,
    "runtime.num_threads": 2,
    "runtime.deterministic": False,
    "runtime.compile": True,
    "runtime.devices": 3,
    "run.tensorboard": True,
}


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_every_moved_key_still_sets_its_new_place_with_set(old, new):
    value = NON_DEFAULT[new]
    cfg = Config().with_overrides({old: value})
    group, key = new.split(".")
    assert getattr(getattr(cfg, group), key) == value
    assert Config.from_dict({old.split(".")[0]: {old.split(".")[1]: value}}) == cfg  # nested (config.yaml, checkpoints)


def test_an_old_and_a_new_name_with_different_values_is_an_error():
    with pytest.raises(ConfigError, match="'train.device' \\(its older name\\) and 'runtime.device' are both given"):
        Config.from_dict({"train": {"device": "cpu"}, "runtime": {"device": "cuda"}})


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.on_nan", "skp", "'train.on_nan': 'skp' is not one of stop, skip; did you mean 'skip'?"),
        (
            "runtime.precision",
            "bf61",
            "'runtime.precision': 'bf61' is not one of fp32, bf16, fp16, auto; did you mean 'bf16'?",
        ),
        (
            "train.precision",
            "fp64",
            "'runtime.precision': 'fp64' is not one of fp32, bf16, fp16, auto; did you mean 'fp16'?",
        ),
        (
            "optim.name",
            "adamw2",
            "'optim.name': 'adamw2' is not one of sgd, adamw, adam, rmsprop; did you mean 'adamw'?",
        ),
        (
            "schedule.name",
            "cosin",
            "'schedule.name': 'cosin' is not one of onecycle, triangle, cosine, step, plateau, constant; did you mean 'cosine'?",
        ),
        ("eval.tta", "flips", "'eval.tta': 'flips' is not one of none, flip, flip\\+shift, d4; did you mean 'flip'?"),
        (
            "model.finetune",
            "heads",
            "'model.finetune': 'heads' is not one of head, full, gradual, fine_tune; did you mean 'head'?",
        ),
        (
            "train.monitor",
            "accuracy",
            "'train.monitor': 'accuracy' is not one of val_accuracy, val_loss; did you mean 'val_accuracy'?",
        ),
        ("augment.auto", "xyz", "'augment.auto': 'xyz' is not one of none, randaugment, trivialaugment$"),
    ],
)
def test_a_closed_set_names_the_key_the_allowed_values_and_the_nearest(key, value, message):
    with pytest.raises(ConfigError, match=message):
        Config().with_overrides({key: value}, source="--set")


def test_a_closed_set_refuses_other_types_and_takes_null_where_optional():
    with pytest.raises(ConfigError, match="'train.on_nan': True is not one of stop, skip"):
        Config().with_overrides({"train.on_nan": True})
    with pytest.raises(
        ConfigError, match="'model.finetune': expected one of head, full, gradual, fine_tune or null, got 3"
    ):
        Config().with_overrides({"model.finetune": 3})
    assert Config().with_overrides({"model.finetune": None}).model.finetune is None
