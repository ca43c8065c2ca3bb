import math

import pytest
import torch

from cnnkit.errors import ConfigError
from cnnkit.models import create_model
from cnnkit.models.attention import CBAM, SpatialAttention, SqueezeExcite
from cnnkit.models.spec import SpecError
from cnnkit.models.summary import count_macs, summarize


def sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_squeeze_excite_matches_a_hand_computation():
    se = SqueezeExcite(2, reduction=2)  # hidden = 1
    with torch.no_grad():
        se.fc1.weight.copy_(torch.tensor([[1.0, 1.0]]))
        se.fc1.bias.zero_()
        se.fc2.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        se.fc2.bias.zero_()
    x = torch.stack([torch.full((2, 2), 1.0), torch.full((2, 2), 3.0)])[None]  # (1, 2, 2, 2)
    # gap = [1, 3]; fc1 -> 4; relu -> 4; fc2 -> [4, -4]; gates sigmoid(4), sigmoid(-4)
    y = se(x)
    assert y[0, 0, 0, 0].item() == pytest.approx(1.0 * sig(4), abs=1e-6)
    assert y[0, 1, 1, 1].item() == pytest.approx(3.0 * sig(-4), abs=1e-6)
    assert y.shape == x.shape


def test_cbam_matches_a_hand_computation():
    cbam = CBAM(2, reduction=2, kernel=1)
    with torch.no_grad():
        cbam.channel.mlp[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        cbam.channel.mlp[0].bias.zero_()
        cbam.channel.mlp[2].weight.copy_(torch.tensor([[1.0], [0.0]]))
        cbam.channel.mlp[2].bias.zero_()
        cbam.spatial.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))  # mean - max
    x = torch.tensor([[[[1.0, 2.0]], [[0.0, 4.0]]]])  # (1, 2, 1, 2)
    # channel gate: avg [1.5, 2] -> mlp [1.5, 0]; max [2, 4] -> mlp [2, 0]; Mc = sigmoid([3.5, 0])
    mc = [sig(3.5), sig(0.0)]
    xp = [[1.0 * mc[0], 2.0 * mc[0]], [0.0 * mc[1], 4.0 * mc[1]]]  # x' per channel, per position
    ms = [sig((xp[0][j] + xp[1][j]) / 2 - max(xp[0][j], xp[1][j])) for j in range(2)]  # spatial gate
    want = torch.tensor([[[[xp[c][j] * ms[j] for j in range(2)]] for c in range(2)]])
    torch.testing.assert_close(cbam(x), want, rtol=0, atol=1e-6)
    assert cbam.spatial(x).shape == (1, 1, 1, 2)


def test_spatial_map_is_a_probability_per_position():
    m = SpatialAttention(7)(torch.randn(3, 8, 5, 6)).detach()
    assert m.shape == (3, 1, 5, 6) and float(m.min()) > 0 and float(m.max()) < 1


def test_spec_layers_se_and_cbam_build_with_their_parameter_counts():
    m = create_model("conv(16,3)-bn-relu-se(4)-cbam(8,kernel=3)-gap-fc", num_classes=10, in_chans=1)
    se, cbam = m.features[3], m.features[4]
    assert isinstance(se, SqueezeExcite) and isinstance(cbam, CBAM)
    assert sum(p.numel() for p in se.parameters()) == (16 * 4 + 4) + (4 * 16 + 16)
    assert sum(p.numel() for p in cbam.parameters()) == (16 * 2 + 2) + (2 * 16 + 16) + 2 * 3 * 3
    assert m(torch.zeros(2, 1, 12, 12)).shape == (2, 10)


def test_residual_block_with_attention_puts_it_before_the_addition():
    m = create_model("conv(8,3)-bn-relu-res(8,attn=cbam)-gap-fc", num_classes=3, in_chans=1)
    body = m.features[3].body
    assert [type(x).__name__ for x in body] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "CBAM"]
    with pytest.raises(SpecError, match="attn must be se or cbam"):
        create_model("conv(8,3)-res(8,attn=eca)-gap-fc", num_classes=3, in_chans=1)


def test_spec_errors_name_the_layer():
    with pytest.raises(SpecError, match=r"se\(0\): r must be an integer >= 1"):
        create_model("conv(8,3)-se(0)-gap-fc", num_classes=3, in_chans=1)
    with pytest.raises(SpecError, match="spatial kernel must be odd"):
        create_model("conv(8,3)-cbam(2,kernel=4)-gap-fc", num_classes=3, in_chans=1)
    with pytest.raises(SpecError, match="needs a feature map"):
        create_model("conv(8,3)-gap-se(2)-fc", num_classes=3, in_chans=1)


def test_summary_counts_the_attention_params_and_macs():
    plain = create_model("conv(16,3)-bn-relu-gap-fc", num_classes=10, in_chans=1)
    withse = create_model("conv(16,3)-bn-relu-se(4)-gap-fc", num_classes=10, in_chans=1)
    withcbam = create_model("conv(16,3)-bn-relu-cbam(4)-gap-fc", num_classes=10, in_chans=1)
    s0, s1, s2 = (summarize(m, (1, 8, 8)) for m in (plain, withse, withcbam))
    assert s1.params - s0.params == (16 * 4 + 4) + (4 * 16 + 16)
    assert s1.macs - s0.macs == 16 * 4 + 4 * 16  # the two fc layers of the gate, once per image
    # two MLP passes (avg and max) + the 7x7 conv over 2 pooled maps at every one of 8x8 positions
    assert s2.macs - s0.macs == 2 * (16 * 4 + 4 * 16) + 2 * 49 * 64
    assert s2.params - s0.params == (16 * 4 + 4) + (4 * 16 + 16) + 49 * 2  # one shared MLP, one 7x7 conv


def test_resnet_attention_option_changes_every_block():
    plain = create_model("resnet18", num_classes=10, in_chans=3, small_input=True)
    se = create_model("resnet18", num_classes=10, in_chans=3, small_input=True, attention="se")
    blocks = [b for s in ("layer1", "layer2", "layer3", "layer4") for b in getattr(se.net, s)]
    assert all(isinstance(b.bn2[1], SqueezeExcite) for b in blocks) and len(blocks) == 8
    # each block of width c adds c*(c/16)+c/16 + (c/16)*c+c; two blocks per stage, widths 64..512
    added = sum(2 * (2 * c * (c // 16) + c // 16 + c) for c in (64, 128, 256, 512))
    assert sum(p.numel() for p in se.parameters()) - sum(p.numel() for p in plain.parameters()) == added
    assert se(torch.zeros(1, 3, 16, 16)).shape == (1, 10)
    assert count_macs(se, (3, 16, 16)) > count_macs(plain, (3, 16, 16))
    with pytest.raises(ConfigError, match="model.kwargs.attention: expected one of se, cbam"):
        create_model("resnet18", num_classes=10, attention="eca")
