"""model.frozen_stages: the first stages of a pretrained backbone stay frozen while the rest trains."""

import pytest

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.models import create_model, transfer
from cnnkit.models import finetune as ft


def test_freeze_first_stages_keeps_the_later_stages_and_the_head_trainable():
    model = create_model("efficientnet_lite0", num_classes=2)
    stages = ft.backbone_stages(model)
    assert stages[:3] == ["net.conv_stem", "net.blocks.0", "net.blocks.1"]
    ft.prepare(model, "full")
    ft.freeze_first_stages(model, 3)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("net.conv_stem", "net.bn1", "net.blocks.0.", "net.blocks.1.")) for n in frozen)
    assert all(
        p.requires_grad for n, p in model.named_parameters() if n.startswith(("net.blocks.2.", "net.classifier"))
    )


def test_fine_tune_epochs_train_all_but_the_frozen_stages():
    cfg = Config().with_overrides({"model.finetune": "fine_tune", "model.frozen_stages": 2}).model
    model = create_model("efficientnet_lite0", num_classes=2)
    ft.prepare(model, "fine_tune")  # the head alone first
    transfer.start_epoch(model, cfg, 0, 3)  # then the whole network, less its first two stages
    assert not any(
        p.requires_grad for n, p in model.named_parameters() if n.startswith(("net.conv_stem", "net.blocks.0."))
    )
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("net.blocks.1."))


def test_frozen_stages_without_a_mode_that_trains_the_backbone_is_refused():
    cfg = Config().with_overrides(
        {"model.name": "efficientnet_lite0", "model.finetune": "head", "model.frozen_stages": 2}
    )
    with pytest.raises(ConfigError, match="model.frozen_stages: 2 .* needs model.finetune full or fine_tune"):
        transfer.build_model(cfg.model, num_classes=2, in_chans=3)
