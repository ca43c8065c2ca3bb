"""training/resolve.py: every automatic choice of a run made in one pure function."""

import types

import pytest
import torch

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training.resolve import model_kwargs, resolve_config


def _data(n=100, channels=3, size=32):
    return types.SimpleNamespace(
        train=[0] * n, masks=False, multi_label=False, channels=channels, image_size=(size, size)
    )


def test_auto_choices_are_made_concrete():
    cfg = Config().with_overrides({"model.name": "auto", "runtime.precision": "auto", "train.batch_size": 64})
    out, notes = resolve_config(cfg, _data(channels=1, size=28), torch.device("cpu"))
    assert (
        out.model.name == "fastnet_t"
        and out.runtime.precision in ("fp32", "bf16")
        and out.train.batch_size == 64
        and notes == []
    )
    assert resolve_config(cfg, _data(channels=3, size=224), torch.device("cpu"))[0].model.name == "resnet18"
    assert cfg.model.name == "auto"  # pure: the input is not changed


def test_small_training_set_clamps_the_batch_with_a_note():
    cfg = Config().with_overrides({"model.name": "simple_cnn", "train.batch_size": 64})
    out, notes = resolve_config(cfg, _data(n=30), torch.device("cpu"), world_size=4)
    assert out.train.batch_size == 28 and notes == [
        "cnnkit: note: train.batch_size 64 is larger than the 30 training images; using 28 (one step per epoch)"
    ]


def test_preset_is_expanded_and_explicit_keys_kept():
    cfg = Config().with_overrides(
        {"model.name": "simple_cnn", "data.dataset": "mnist-mini", "augment.preset": "standard", "augment.rotate": 5.0}
    )
    out, _ = resolve_config(cfg, _data(), torch.device("cpu"))
    assert out.augment.preset is None and out.augment.rotate == 5.0  # the config's own value wins over the preset's 10
    assert (out.augment.translate, out.augment.scale, out.augment.hflip) == (2, 0.1, False)  # digits: no flips


def test_folder_data_records_what_was_found_only_for_a_new_run():
    cfg = Config().with_overrides({"model.name": "simple_cnn", "data.dataset": "folder", "data.path": "x"})
    new, _ = resolve_config(cfg, _data(channels=1, size=48), torch.device("cpu"))
    resumed, _ = resolve_config(cfg, _data(channels=1, size=48), torch.device("cpu"), new_run=False)
    assert (new.data.channels, new.data.image_size) == (1, 48)
    assert (resumed.data.channels, resumed.data.image_size) == (cfg.data.channels, cfg.data.image_size)


def test_model_kwargs_take_the_image_size_and_refuse_reserved_keys():
    data = _data(size=48)
    assert model_kwargs(Config().with_overrides({"model.name": "simple_cnn"}), data).get("image_size") in (None, 48)
    with pytest.raises(ConfigError, match="model.kwargs.num_classes is set from the dataset"):
        model_kwargs(Config().with_overrides({"model.name": "simple_cnn", "model.kwargs": {"num_classes": 3}}), data)
