import types

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.checkpoint import atomic_save, make_checkpoint
from cnnkit.cli import main
from cnnkit.data.preprocess import Normalize
from cnnkit.errors import ConfigError
from cnnkit.explain.api import explain_batch, explain_files
from cnnkit.explain.attention_map import attention_layers, resolve_attention, spatial_attention
from cnnkit.models import create_model

SPEC = "conv(2,1)-cbam(1,kernel=1)-conv(4,3)-relu-cbam(2)-gap-fc"


def bright_square_model():
    """A model whose first CBAM's gate is sigmoid(6 * max_c - 3): high on bright pixels only."""
    m = create_model(SPEC, num_classes=2, in_chans=1).eval()
    with torch.no_grad():
        m.features[0].weight.fill_(1.0)
        m.features[0].bias.zero_()
        first = m.features[1]
        for lin in (first.channel.mlp[0], first.channel.mlp[2]):
            lin.weight.zero_()
            lin.bias.zero_()  # channel gate sigmoid(0) = 0.5 everywhere
        first.spatial.conv.weight.copy_(torch.tensor([0.0, 12.0]).view(1, 2, 1, 1))
    return m


def test_the_gate_is_read_from_the_chosen_cbam_block():
    m = bright_square_model()
    x = torch.zeros(1, 1, 8, 8)
    x[..., :3, :3] = 1.0  # bright top-left square; x' = 0.5 there, gate sigmoid(12 * 0.5) = sigmoid(6)
    gate = spatial_attention(m, x, layer="features.1")
    assert gate.shape == (1, 8, 8)
    assert gate[0, :3, :3] == pytest.approx(np.full((3, 3), 1 / (1 + np.exp(-6))), abs=1e-6)
    assert gate[0, 4:, 4:] == pytest.approx(np.full((4, 4), 0.5), abs=1e-6)  # sigmoid(0) elsewhere
    assert attention_layers(m) == ["features.1.spatial", "features.4.spatial"]
    assert resolve_attention(m, None)[0] == "features.4.spatial"  # the deepest by default


def test_models_without_cbam_and_wrong_layers_are_clear_errors():
    plain = create_model("conv(4,3)-gap-fc", num_classes=2, in_chans=1)
    with pytest.raises(ConfigError, match="--method attention needs a model with CBAM blocks"):
        spatial_attention(plain, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ConfigError, match=r"--layer 'features.0' is not a CBAM block; the model's are: features.1"):
        resolve_attention(bright_square_model(), "features.0")


def test_explain_batch_attention_keeps_the_gate_values():
    clf = types.SimpleNamespace(model=bright_square_model(), normalize=Normalize((0.0,), (1 / 255,)))
    images = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    images[..., :3, :3] = 1  # normalised: 1 / (1/255) * 1/255 ... = 1.0 at the square
    heat, probs = explain_batch(clf, images, method="attention", layer="features.1")
    assert float(heat[0, 0, 0]) == pytest.approx(1 / (1 + np.exp(-6)), abs=1e-5)
    assert float(heat[0, 7, 7]) == pytest.approx(0.5, abs=1e-6) and probs.shape == (1, 2)


def test_cli_writes_attention_beside_gradcam(tmp_path, capsys):
    m = bright_square_model()
    ck = make_checkpoint(
        m,
        class_names=["a", "b"],
        channels=1,
        size=(8, 8),
        mean=[0.0],
        std=[1.0],
        config={},
        dataset="x",
        epoch=1,
        metrics={},
    )
    atomic_save(ck, tmp_path / "m.ckpt")
    pixels = np.zeros((8, 8), np.uint8)
    pixels[:3, :3] = 255
    (tmp_path / "imgs").mkdir()
    Image.fromarray(pixels).save(tmp_path / "imgs" / "sq.png")
    assert main(["explain", str(tmp_path / "m.ckpt"), str(tmp_path / "imgs" / "sq.png"), "--method", "attention"]) == 0
    png = tmp_path / "explain" / "attention" / "imgs_sq.png"
    assert f"-> {png}" in capsys.readouterr().out and png.is_file()
    assert Image.open(png).size[0] == 1200  # four panels: image | attention | Grad-CAM | overlay
    result = explain_files(tmp_path / "m.ckpt", [tmp_path / "imgs"], method="attention", out=tmp_path / "o")
    assert result.items[0].path == tmp_path / "o" / "imgs_sq.png" and result.items[0].path.is_file()
