import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.models import finetune as ft


def model():
    torch.manual_seed(0)
    return create_model("conv(8,3)-bn-relu-conv(16,3)-bn-relu-res(16)-gap-fc", num_classes=3, in_chans=1)


def trainable(m):
    return [n for n, p in m.named_parameters() if p.requires_grad]


def test_head_mode_trains_only_the_classifier_with_frozen_batch_norm_in_eval():
    m = model()
    ft.prepare(m, "head")
    assert trainable(m) == ["head.1.weight", "head.1.bias"]
    ft.train_mode(m)
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.training for bn in bns)
    before = bns[0].running_mean.clone()
    out = m(torch.randn(4, 1, 8, 8) * 5 + 3)
    out.sum().backward()
    assert torch.equal(bns[0].running_mean, before)  # running statistics untouched
    assert m.features[0].weight.grad is None and m.head[1].weight.grad is not None


def test_full_mode_discriminative_learning_rates():
    m = model()
    ft.prepare(m, "full")
    groups = ft.param_groups(m, 0.1, backbone_lr_scale=0.01, weight_decay=5e-4)
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 0.1 and by_name["backbone"]["lr"] == pytest.approx(0.001)
    assert by_name["backbone_no_decay"]["weight_decay"] == 0.0 and by_name["backbone"]["weight_decay"] == 5e-4
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    opt = torch.optim.SGD(groups, lr=0.1)  # the groups' own rates win
    assert sorted({g["lr"] for g in opt.param_groups}) == [pytest.approx(0.001), 0.1]
    assert len(trainable(m)) == len(list(m.parameters()))


def test_gradual_unfreezes_stage_by_stage_from_the_top():
    m = create_model("resnet18", num_classes=3, in_chans=3, small_input=True)
    ft.prepare(m, "gradual")
    assert ft.backbone_stages(m) == ["net.conv1", "net.layer1", "net.layer2", "net.layer3", "net.layer4"]
    seen = []
    for epoch in range(6):
        k = ft.gradual_unfreeze(m, epoch, 6)
        names = trainable(m)
        seen.append(k)
        if k == 0:
            assert names == ["net.fc.weight", "net.fc.bias"]
        if k == 1:
            assert names[0].startswith("net.layer4.") and not any(n.startswith("net.layer3.") for n in names)
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] == 5
    assert len(trainable(m)) == len(list(m.parameters()))  # the last epoch trains everything


def test_unknown_mode_is_an_error():
    with pytest.raises(ConfigError, match="choose head, full, gradual or fine_tune"):
        ft.prepare(model(), "partial")


def test_model_config_has_the_transfer_keys():
    from cnnkit.config import Config

    cfg = Config().with_overrides(
        {
            "model.pretrained": True,
            "model.finetune": "head",
            "model.weights": "w.safetensors",
            "model.backbone_lr_scale": 0.05,
        }
    )
    assert (
        cfg.model.pretrained,
        cfg.model.finetune,
        cfg.model.weights,
        cfg.model.strict_weights,
        cfg.model.backbone_lr_scale,
        cfg.model.cache_features,
    ) == (True, "head", "w.safetensors", True, 0.05, True)
    assert Config().with_overrides({"model.pretrained": "IMAGENET1K_V2"}).model.pretrained == "IMAGENET1K_V2"


def test_build_model_from_config_pretrained_head(tmp_path, monkeypatch):
    from cnnkit.config import Config
    from cnnkit.models import transfer

    src = create_model("mobilenet_v3_small", num_classes=1000, in_chans=3)
    torch.save(src.net.state_dict(), tmp_path / "tv.pth")  # a torchvision-layout file
    cfg = Config().with_overrides(
        {
            "model.name": "mobilenet_v3_small",
            "model.weights": str(tmp_path / "tv.pth"),
            "model.finetune": "head",
            "model.kwargs": {"small_input": True},
        }
    )
    m = transfer.build_model(cfg.model, num_classes=4, in_chans=1, image_size=32)
    torch.testing.assert_close(m.net.features[1].block[0][0].weight, src.net.features[1].block[0][0].weight)
    assert trainable(m) == ["net.classifier.3.weight", "net.classifier.3.bias"]
    assert transfer.use_feature_cache(cfg.model, augmenting=False) and not transfer.use_feature_cache(
        cfg.model, augmenting=True
    )
    groups = transfer.param_groups_for(m, cfg.model, lr=0.01, weight_decay=0.0)
    assert {g["lr"] for g in groups} == {0.01}  # head mode: the backbone is frozen anyway
    transfer.start_epoch(m, cfg.model, 0, 3)
    assert m.training and not m.net.features[0][1].training


def test_build_model_refuses_pretrained_without_published_weights():
    from cnnkit.config import Config
    from cnnkit.models import transfer

    with pytest.raises(ConfigError, match="vgg11 has no published weights"):
        transfer.build_model(
            Config().with_overrides({"model.name": "vgg11", "model.pretrained": True}).model, num_classes=10, in_chans=3
        )
    with pytest.raises(ConfigError, match="fine-tuning needs starting weights"):
        transfer.build_model(
            Config().with_overrides({"model.name": "simple_cnn", "model.finetune": "full"}).model,
            num_classes=10,
            in_chans=1,
        )
    spec = transfer.build_model(
        Config().with_overrides({"model.name": "conv(4,3)-flatten-fc"}).model, num_classes=2, in_chans=1, image_size=6
    )
    assert spec.cnnkit_spec["kwargs"]["image_size"] == 6 and spec.head[-1].in_features == 4 * 6 * 6


def test_preprocessing_follows_the_weights_and_the_channels():
    from cnnkit.models.transfer import preprocessing

    m = model()
    assert preprocessing(m) is None  # from scratch: the dataset's statistics apply
    m.pretrained_cfg = {"source": "torchvision:x", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert preprocessing(m, 3) == m.pretrained_cfg
    grey = preprocessing(m, 1)
    assert (
        grey["source"] == "torchvision:x"
        and grey["mean"] == [pytest.approx(0.449)]
        and grey["std"] == [pytest.approx(0.226)]
    )


def test_fine_tune_mode_trains_the_head_then_everything():
    from cnnkit.config import ModelConfig
    from cnnkit.models import transfer

    model = create_model("resnet18", num_classes=3, in_chans=3)
    mcfg = ModelConfig(name="resnet18", finetune="fine_tune")
    ft.prepare(model, "fine_tune")  # frozen for the head's stage (the trainer's warm_up_head)
    n = sum(1 for _ in model.parameters())
    trainable = lambda: sum(p.requires_grad for p in model.parameters())  # noqa: E731
    assert trainable() == 2  # the classifier's weight and bias
    transfer.start_epoch(model, mcfg, 0, 5)  # every epoch of the run trains everything
    assert trainable() == n
    groups = transfer.param_groups_for(model, mcfg, lr=1.0, weight_decay=0.0)
    assert {g["name"]: g["lr"] for g in groups}["backbone"] == pytest.approx(0.1)
