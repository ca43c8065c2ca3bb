import pytest

from cnnkit.config import Config, ConfigError, all_keys, load_config, save_config


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
