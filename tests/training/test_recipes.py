import pytest
import torch

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training.device import resolve_precision
from cnnkit.training.recipes import RECIPES, apply_recipe, recipe_for
from cnnkit.training.trainer import auto_model


def test_auto_picks_the_datasets_recipe_and_records_none():
    cfg = apply_recipe(Config().with_overrides({"data.dataset": "mnist"}))
    assert cfg.model.name == "fastnet_t" and cfg.train.epochs == 1 and cfg.train.batch_size == 128
    assert cfg.train.recipe == "none"  # expanded: the saved config reproduces without recipes
    assert apply_recipe(cfg) == cfg


def test_keys_the_user_sets_win_over_the_recipe():
    cfg = apply_recipe(
        Config().with_overrides({"data.dataset": "cifar10", "train.epochs": 3, "model.name": "resnet18"})
    )
    assert cfg.train.epochs == 3 and cfg.model.name == "resnet18"
    assert cfg.optim.bias_lr_scale == 64.0 and cfg.train.lookahead and cfg.schedule.name == "triangle"


def test_none_and_datasets_without_a_recipe_keep_the_defaults():
    plain = Config().with_overrides({"data.dataset": "mnist", "train.recipe": "none"})
    assert apply_recipe(plain).model.name == "auto" and apply_recipe(plain).train.epochs == 8
    assert recipe_for("auto", "folder") is None


def test_unknown_recipe_names_the_key_and_suggests():
    with pytest.raises(ConfigError, match="train.recipe.*cifar-fast"):
        recipe_for("cifar-fats", "cifar10")


def test_every_recipe_key_is_a_config_key():
    for r in RECIPES.values():
        cfg = Config().with_overrides(r.overrides)  # strict: a typo in a key raises here
        for key, value in r.overrides.items():
            group, name = key.split(".")
            assert getattr(getattr(cfg, group), name) == value, (r.name, key)


def test_auto_model_by_channels_and_size():
    assert auto_model(1, 28) == "fastnet_t" and auto_model(3, 32) == "fastnet_s" and auto_model(3, 64) == "fastnet_s"
    assert auto_model(3, 224) == "resnet18"


def test_auto_precision_is_concrete():
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("bf16", "fp32")


def test_transfer_recipes_follow_the_finetune_mode():
    head = apply_recipe(
        Config().with_overrides({"data.dataset": "folder", "model.pretrained": True, "model.finetune": "head"})
    )
    assert (
        head.optim.name == "adamw"
        and head.optim.lr == 3e-3
        and head.optim.label_smoothing == 0.0
        and head.augment.translate == 0
    )
    full = apply_recipe(
        Config().with_overrides({"data.dataset": "folder", "model.pretrained": True, "model.finetune": "full"})
    )
    assert (
        full.optim.lr == 1e-3 and not full.augment.hflip and full.train.epochs == 5
    )  # flips come from the photo check, never for digits
    assert (
        apply_recipe(Config().with_overrides({"data.dataset": "folder", "model.finetune": "head"})).optim.name == "sgd"
    )  # no weights: no transfer recipe


def test_pretrained_alone_means_head_with_its_recipe_and_fine_tune_has_its_own():
    cfg = apply_recipe(Config().with_overrides({"data.dataset": "folder", "model.pretrained": True}))
    assert (
        cfg.model.finetune == "head"
        and cfg.optim.lr == 3e-3
        and cfg.optim.name == "adamw"
        and cfg.augment.translate == 0
    )
    ft = apply_recipe(
        Config().with_overrides({"data.dataset": "folder", "model.pretrained": True, "model.finetune": "fine_tune"})
    )
    assert ft.model.head_epochs == 10 and ft.optim.lr == 1e-3 and ft.model.backbone_lr_scale == 0.1
    mnist = apply_recipe(Config().with_overrides({"data.dataset": "mnist", "model.pretrained": True}))
    assert mnist.model.finetune is None  # the dataset's own recipe applies; no mode is imposed
    off = apply_recipe(
        Config().with_overrides({"data.dataset": "folder", "model.pretrained": True, "train.recipe": "none"})
    )
    assert off.model.finetune is None and off.optim.name == "sgd"


def test_cnnkit_recipes_lists_the_transfer_recipes(capsys):
    from cnnkit.cli import main

    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "transfer-head" in out and "--finetune head" in out and "fine-tune" in out and "--finetune fine_tune" in out
    assert main(["recipes", "--show", "fine-tune"]) == 0
    shown = capsys.readouterr().out
    assert (
        "default for: --finetune fine_tune" in shown
        and "optim.lr = 0.001" in shown
        and "model.backbone_lr_scale = 0.1" in shown
    )
