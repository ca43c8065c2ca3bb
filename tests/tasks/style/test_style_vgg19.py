import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.tasks.style.features import FeatureExtractor
from cnnkit.tasks.style.networks import load_network
from cnnkit.tasks.style.vgg19 import VGG19_CFG, is_vgg19_state_dict


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """A randomly initialised torchvision VGG-19 `features` state dict (80 MB; nothing downloaded)."""
    from torchvision.models.vgg import cfgs, make_layers

    assert cfgs["E"] == VGG19_CFG  # the layout this package names is torchvision's
    torch.manual_seed(0)
    sd = {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(sd, path)
    return path


def test_a_vgg19_state_dict_gives_the_papers_layers_and_weights(vgg19_file):
    net = load_network(str(vgg19_file))
    assert net.content_layer == "conv4_2"
    assert net.style_layers == ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert net.mean == pytest.approx([0.485, 0.456, 0.406])
    sd = torch.load(vgg19_file, weights_only=True)
    assert torch.equal(net.model.conv4_2[0].weight, sd["features.21.weight"])  # conv4_2 is torchvision's features.21
    ex = FeatureExtractor(net.model, [net.content_layer, *net.style_layers], net.mean, net.std)
    feats = ex(torch.rand(1, 3, 32, 32))
    assert tuple(feats["conv4_2"].shape) == (1, 512, 4, 4)  # three pools: 32 -> 4
    assert tuple(feats["conv1_1"].shape) == (1, 64, 32, 32)
    assert feats["conv4_2"].min() >= 0  # the ReLU's output, as in the paper


def test_other_state_dicts_are_refused_with_the_file_named(tmp_path):
    sd = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}
    assert not is_vgg19_state_dict(sd)
    path = tmp_path / "other.pth"
    torch.save(sd, path)
    with pytest.raises(ConfigError, match=r"--weights .*other\.pth: not a network style transfer knows"):
        load_network(str(path))
