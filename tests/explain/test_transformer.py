"""explain/transformer.py: attention rollout against a hand computation, Grad-CAM on ViT tokens, the CLI on vit_tiny."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit.checkpoint import atomic_save, make_checkpoint
from cnnkit.cli import main
from cnnkit.errors import ConfigError
from cnnkit.explain.attribution import attribute
from cnnkit.explain.transformer import record_attention, rollout, rollout_maps, token_reshape
from cnnkit.models import create_model


def test_rollout_of_two_layers_by_hand():
    # one image, 2 heads, 2 tokens; each head's rows sum to 1
    a1 = torch.tensor([[[[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]])
    a2 = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.5, 0.5]]]])
    # layer 1: heads averaged [[.75,.25],[0,1]]; + I -> [[1.75,.25],[0,2]]; rows / 2 -> [[.875,.125],[0,1]]
    # layer 2: [[0,1],[.75,.25]]; + I -> [[1,1],[.75,1.25]]; / 2 -> [[.5,.5],[.375,.625]]
    # rollout = layer2 @ layer1 = [[.4375, .5625], [.328125, .671875]]
    expected = torch.tensor([[[0.4375, 0.5625], [0.328125, 0.671875]]])
    torch.testing.assert_close(rollout([a1, a2]), expected)
    assert torch.allclose(rollout([a1, a2]).sum(-1), torch.ones(1, 2))  # still a mixing of the inputs
    with pytest.raises(ValueError, match="at least one block"):
        rollout([])


def _tiny_vit():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(img_size=8, patch_size=4, embed_dim=6, depth=2, num_heads=2, num_classes=3).eval()


def test_recorded_weights_are_each_blocks_softmax_and_the_map_is_the_class_row_on_the_grid():
    vit, x = _tiny_vit(), torch.randn(1, 3, 8, 8)
    inputs = []
    hooks = [b.norm1.register_forward_hook(lambda _m, _i, out: inputs.append(out.detach())) for b in vit.blocks]
    fused = [b.attn.fused_attn for b in vit.blocks]
    weights = record_attention(vit, x)
    for h in hooks:
        h.remove()
    assert [b.attn.fused_attn for b in vit.blocks] == fused  # restored after recording
    assert len(weights) == 2 and weights[0].shape == (1, 2, 5, 5)  # class token + a 2x2 grid
    for block, z, w in zip(vit.blocks, inputs, weights):
        q, k, _ = block.attn.qkv(z).reshape(1, 5, 3, 2, 3).permute(2, 0, 3, 1, 4)  # (1, heads, 5, 3) each
        by_hand = torch.softmax(q @ k.transpose(-2, -1) / 3**0.5, dim=-1)
        torch.testing.assert_close(w, by_hand)
    r = rollout(weights)
    grid = r[:, 0, 1:].reshape(1, 1, 2, 2)  # row-major: top-left, top-right, bottom-left, bottom-right
    heat = F.interpolate(grid, size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
    heat = (heat - heat.min()) / (heat.max() - heat.min())
    np.testing.assert_allclose(rollout_maps(vit, x)[0], heat.numpy(), atol=1e-6)


def test_rollout_needs_a_vit():
    cnn = create_model("simple_cnn", num_classes=2, in_chans=1, width=2, stages=1, depth=1)
    with pytest.raises(ConfigError, match="--method rollout needs a Vision Transformer"):
        rollout_maps(cnn, torch.zeros(1, 1, 8, 8))


def test_token_reshape_lays_the_patches_out_row_major():
    vit = _tiny_vit()
    tokens = torch.arange(5.0).view(1, 5, 1).expand(1, 5, 2)  # token i holds i; token 0 is the class token
    grid = token_reshape(vit, torch.zeros(1, 3, 8, 8))(tokens)
    assert grid.shape == (1, 2, 2, 2) and grid[0, 0].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_gradcam_on_the_last_block_of_vit_tiny():
    m = create_model("vit_tiny", num_classes=3, in_chans=3, image_size=16, depth=2).eval()
    assert m.target_layer == "net.blocks.1.norm1"
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for method in ("gradcam", "gradcam++"):
        heat = attribute(m, x, method, targets=[0, 2])  # the default layer: the last block's tokens
        assert heat.shape == (2, 16, 16) and heat.min() >= 0 and float(heat.max()) == pytest.approx(1.0)
        assert heat.reshape(2, -1).std(1).min() > 0  # a map over the 4x4 grid, not a constant


def test_cli_writes_the_rollout_overlay_for_vit_tiny(tmp_path, capsys):
    m = create_model("vit_tiny", num_classes=2, in_chans=3, image_size=16, depth=2).eval()
    ck = make_checkpoint(
        m,
        class_names=["a", "b"],
        channels=3,
        size=(16, 16),
        mean=[0.5] * 3,
        std=[0.25] * 3,
        config={},
        dataset="x",
        epoch=1,
        metrics={},
    )
    atomic_save(ck, tmp_path / "m.ckpt")
    (tmp_path / "imgs").mkdir()
    pixels = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "imgs" / "x.png")
    args = ["explain", str(tmp_path / "m.ckpt"), str(tmp_path / "imgs" / "x.png")]
    assert main([*args, "--method", "rollout"]) == 0
    png = tmp_path / "explain" / "rollout" / "imgs_x.png"
    assert f"-> {png}" in capsys.readouterr().out and png.is_file()
    assert Image.open(png).size[0] > 600  # three panels: image | rollout | overlay
    assert main([*args, "--method", "gradcam", "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "imgs_x.png").is_file()
