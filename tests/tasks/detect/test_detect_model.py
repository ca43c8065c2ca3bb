"""The detectors of model.py on a tiny batch: FCOS (one-stage) and the Lite0 + FPN Faster R-CNN give their
losses in train mode and boxes in eval mode; anchor keys are validated per model."""

import pytest
import torch
from PIL import Image
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.cli import main
from cnnkit.errors import ConfigError
from cnnkit.tasks.detect.model import anchor_generator, as_targets, create_detector
from cnnkit.tasks.detect.train import load_detector_checkpoint, train_detection


def _batch():
    data = tiny_data(2)
    images = [im.float() / 255 for im in data.train.images]
    return images, as_targets(data.train.boxes, data.train.labels, torch.device("cpu"))


@pytest.mark.parametrize(
    "name, kwargs, losses",
    [
        ("fcos_tiny", {"width": 4}, {"classification", "bbox_regression", "bbox_ctrness"}),
        ("fasterrcnn_lite0", {}, {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}),
    ],
)
def test_losses_in_train_mode_and_boxes_in_eval_mode(name, kwargs, losses):
    torch.manual_seed(0)
    model = create_detector(name, 2, 1, 64, [0.1], [0.3], kwargs)
    images, targets = _batch()
    model.train()
    out = model(images, targets)
    assert set(out) == losses and all(torch.isfinite(v) and v >= 0 for v in out.values())
    sum(out.values()).backward()
    model.eval()
    with torch.no_grad():
        found = model(images)
    assert len(found) == 2
    for f in found:
        k = f["boxes"].shape[0]
        assert f["boxes"].shape == (k, 4) and f["scores"].shape == (k,) and f["labels"].shape == (k,)
        assert k == 0 or (f["labels"].min() >= 1 and f["labels"].max() <= 2)  # 1 + class


def test_lite0_fpn_gives_three_maps_at_strides_8_16_32():
    model = create_detector("fasterrcnn_lite0", 2, 1, 64, [0.1], [0.3], {})
    feats = model.backbone(torch.zeros(1, 1, 64, 64))
    assert [tuple(f.shape) for f in feats.values()] == [(1, 64, 8, 8), (1, 64, 4, 4), (1, 64, 2, 2)]
    assert model.rpn.anchor_generator.sizes == ((16,), (32,), (64,))
    assert model.transform.image_mean == [127 / 255]  # Lite0's own normalisation, one channel


def test_lite0_pretrained_loads_the_package_weights():
    from cnnkit.models.efficientnet import efficientnet_lite0

    ref = efficientnet_lite0(num_classes=1000, in_chans=3, pretrained=True).net
    model = create_detector("fasterrcnn_lite0", 2, 3, 64, [0.5] * 3, [0.25] * 3, {}, pretrained=True)
    assert torch.equal(model.backbone.blocks[4][0].conv_pw.weight, ref.blocks[4][0].conv_pw.weight)
    model.train()  # pretrained: BN statistics stay ImageNet's
    assert not model.backbone.bn1.training and model.backbone.fpn.training


def test_anchor_sizes_must_match_the_feature_maps():
    assert anchor_generator([[8, 16], [32, 48], [64, 96]], [1.0], 3, "m").sizes == ((8, 16), (32, 48), (64, 96))
    assert anchor_generator([12, 20], [1.0, 2.0], 1, "m").sizes == ((12, 20),)
    with pytest.raises(ConfigError, match="anchor_sizes: fasterrcnn_lite0 has 3 feature map"):
        create_detector("fasterrcnn_lite0", 2, 1, 64, [0.1], [0.3], {"anchor_sizes": [16, 32]})
    with pytest.raises(ConfigError, match="each as long"):
        anchor_generator([[8, 16], [32], [64]], [1.0], 3, "m")
    with pytest.raises(ConfigError, match="aspect_ratios: positive"):
        anchor_generator([8], [0.0], 1, "m")
    with pytest.raises(ConfigError, match="fcos_tiny has one feature map and is anchor-free"):
        create_detector("fcos_tiny", 2, 1, 64, [0.1], [0.3], {"anchor_sizes": [8, 16]})
    with pytest.raises(ConfigError, match="aspect_ratios not known to fcos_tiny"):
        create_detector("fcos_tiny", 2, 1, 64, [0.1], [0.3], {"aspect_ratios": [1.0]})
    with pytest.raises(ConfigError, match="fasterrcnn_tiny has no pretrained weights"):
        create_detector("fasterrcnn_tiny", 2, 1, 64, [0.1], [0.3], {}, pretrained=True)


def test_a_tiny_fcos_run_trains_through_the_same_loop(tmp_path, capsys):
    cfg = tiny_cfg(tmp_path)
    cfg.model.name = "fcos_tiny"
    run = train_detection(cfg, data=tiny_data(), quiet=True)
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,classification,bbox_regression,bbox_ctrness,val_map_50,val_map,seconds"
    ckpt = load_detector_checkpoint(run)
    assert ckpt["model"]["name"] == "fcos_tiny" and (run / "summary.json").is_file()
    img = tmp_path / "scene.png"
    Image.fromarray(tiny_data().train.images[0, 0].numpy()).save(img)
    assert main(["anchors", str(run), str(img), "--out", str(tmp_path / "a")]) != 0  # no RPN: a clear error
    assert "fcos_tiny model has no region proposal network" in capsys.readouterr().err
