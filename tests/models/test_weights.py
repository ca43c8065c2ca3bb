import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.models.weights import load_weights


def small(num_classes=4, in_chans=3):
    torch.manual_seed(num_classes)
    return create_model("conv(8,3)-bn-relu-conv(16,3)-bn-relu-gap-fc", num_classes=num_classes, in_chans=in_chans)


def test_safetensors_and_pth_round_trip(tmp_path):
    src = small()
    sd = {k: v.contiguous() for k, v in src.state_dict().items()}
    save_file(sd, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.pth")  # DDP-style wrapper
    for name in ("w.safetensors", "w.pth"):
        dst = create_model("conv(8,3)-bn-relu-conv(16,3)-bn-relu-gap-fc", num_classes=4, in_chans=3)
        report = load_weights(dst, tmp_path / name)
        assert report.loaded == len(sd) and not report.missing and not report.unexpected
        for k, v in dst.state_dict().items():
            assert torch.equal(v, sd[k]), k


def test_mismatched_keys_are_listed_unless_non_strict(tmp_path):
    sd = small().state_dict()
    sd["features.9.weight"] = torch.zeros(3)  # unexpected
    del sd["features.3.weight"]  # missing
    sd["features.0.weight"] = torch.zeros(8, 3, 5, 5)  # wrong shape
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(ConfigError) as e:
        load_weights(small(), tmp_path / "bad.pt")
    msg = str(e.value)
    assert "missing in the file (1): features.3.weight" in msg
    assert "unexpected in the file (1): features.9.weight" in msg
    assert "features.0.weight: file (8, 3, 5, 5) vs model (8, 3, 3, 3)" in msg
    assert "strict_weights=false" in msg
    dst = small()
    report = load_weights(dst, tmp_path / "bad.pt", strict=False)
    assert report.missing == ["features.3.weight"] and torch.equal(
        dst.state_dict()["features.4.weight"], sd["features.4.weight"]
    )


def test_other_class_count_skips_the_head_and_grey_input_sums_the_stem(tmp_path):
    src = small(num_classes=4, in_chans=3)
    torch.save(src.state_dict(), tmp_path / "w.pth")
    dst = small(num_classes=7, in_chans=1)
    head_before = dst.head[-1].weight.clone()
    report = load_weights(dst, tmp_path / "w.pth")
    assert report.skipped_head == ["head.1.weight", "head.1.bias"] and report.adapted == ["features.0.weight"]
    assert torch.equal(dst.head[-1].weight, head_before)
    torch.testing.assert_close(dst.features[0].weight, src.features[0].weight.sum(1, keepdim=True))
    grey = torch.rand(2, 1, 12, 12)
    src.eval(), dst.eval()
    torch.testing.assert_close(
        dst.forward_features(grey), src.forward_features(grey.expand(-1, 3, -1, -1)), atol=1e-5, rtol=1e-5
    )


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_cnnkit_test",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"state_dict": Exploit()}, f, protocol=2)
    with pytest.raises(
        ConfigError, match="evil.pth: this file needs full unpickling, which cnnkit refuses because it could run code"
    ):
        load_weights(small(), tmp_path / "evil.pth")
    assert not (tmp_path / "pwned_by_cnnkit_test").exists()


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(ConfigError, match="unknown weights format '.onnx'"):
        load_weights(small(), tmp_path / "w.onnx")
    with pytest.raises(ConfigError, match="file not found"):
        load_weights(small(), tmp_path / "nope.pth")


def test_torchvision_state_dict_fits_the_wrapped_model(tmp_path):
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v3_small(num_classes=10)
    save_file(tv.state_dict(), tmp_path / "tv.safetensors")
    m = create_model("mobilenet_v3_small", num_classes=10, in_chans=3)
    assert load_weights(m, tmp_path / "tv.safetensors").loaded == len(tv.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(m.eval()(x), tv.eval()(x))


def test_pretrained_from_a_prefilled_torch_hub_cache(tmp_path, monkeypatch):
    """The real torchvision loading path, offline: a random state dict under the expected file name."""
    import torchvision
    from torchvision.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("torch.hub.download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    torch.manual_seed(1)
    fake = torchvision.models.resnet18().state_dict()
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(fake, cache / ResNet18_Weights.DEFAULT.url.rsplit("/", 1)[-1])
    m = create_model("resnet18", num_classes=5, in_chans=1, pretrained=True)
    torch.testing.assert_close(m.net.conv1.weight, fake["conv1.weight"].sum(1, keepdim=True))  # grey stem from RGB
    torch.testing.assert_close(m.net.layer4[1].conv2.weight, fake["layer4.1.conv2.weight"])
    assert m.net.fc.out_features == 5
    assert m.pretrained_cfg == {
        "source": "torchvision:resnet18.IMAGENET1K_V1",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    assert "pretrained" not in m.cnnkit_spec["kwargs"]


def test_pretrained_offline_without_cache_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    with pytest.raises(ConfigError, match=r"place the file resnet18-f37072fd.pth in .*hub/checkpoints"):
        create_model("resnet18", num_classes=5, in_chans=3, pretrained=True)


def test_pretrained_googlenet_from_the_cache_drops_aux_heads_and_keeps_its_input_transform(tmp_path, monkeypatch):
    import torchvision
    from torchvision.models import GoogLeNet_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("torch.hub.download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    fake = torchvision.models.googlenet(
        aux_logits=True, init_weights=False
    ).state_dict()  # the published file has aux heads
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(fake, tmp_path / "hub" / "checkpoints" / GoogLeNet_Weights.DEFAULT.url.rsplit("/", 1)[-1])
    m = create_model("googlenet", num_classes=3, in_chans=3, pretrained=True, small_input=True).eval()
    assert m.net.aux1 is None and m.input_transform == "_transform_input"
    torch.testing.assert_close(m.net.inception5b.branch1.conv.weight, fake["inception5b.branch1.conv.weight"])
    x = torch.randn(1, 3, 32, 32)
    from cnnkit.models.googlenet import FEATURES

    expected = m.net._transform_input(x)  # torchvision's re-normalisation comes first
    for name in FEATURES:
        expected = m.net.get_submodule(name)(expected)
    torch.testing.assert_close(m.forward_features(x), expected)
