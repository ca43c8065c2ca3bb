import torch

from cnnkit.models import create_model
from cnnkit.models.summary import count_macs


def test_vit_tiny_at_224_px_has_the_published_parameter_count():
    with torch.device("meta"):
        m = create_model("vit_tiny", num_classes=1000, in_chans=3, image_size=224)
    assert m.net.patch_embed.patch_size == (16, 16)
    assert sum(p.numel() for p in m.parameters()) == 5_717_416  # timm's vit_tiny_patch16_224


def test_small_images_are_cut_into_4_px_patches():
    m = create_model("vit_tiny", num_classes=10, in_chans=3, image_size=32, depth=1).eval()
    tokens = m.forward_features(torch.zeros(2, 3, 32, 32))
    assert tokens.shape == (2, 1 + 8 * 8, 192)  # class token + an 8x8 grid of patches
    assert m.forward_head(tokens).shape == (2, 10)
    assert m.forward_features(torch.zeros(1, 3, 28, 28)).shape == (1, 1 + 7 * 7, 192)  # position embedding resized
    m.reset_classifier(4)
    assert m(torch.zeros(1, 3, 32, 32)).shape == (1, 4)


def test_macs_grow_with_the_token_count():
    with torch.device("meta"):
        m = create_model("vit_tiny", num_classes=10, in_chans=3, image_size=32, depth=1)
    # one block on 65 tokens: qkv 3*192^2, proj 192^2, mlp 2*192*768 per token, + attention 2*65*192
    per_token = 3 * 192 * 192 + 192 * 192 + 2 * 192 * 768
    block = 65 * per_token + 2 * 65 * 65 * 192
    embed = 64 * 3 * 16 * 192  # 4x4x3 patches to 192
    assert count_macs(m, (3, 32, 32)) == block + embed + 192 * 10


def test_saliency_and_gradcam_run_on_a_vit():
    import types

    from cnnkit.data.preprocess import Normalize
    from cnnkit.explain.api import explain_batch

    m = create_model("vit_tiny", num_classes=3, in_chans=3, image_size=16, depth=1).eval()
    clf = types.SimpleNamespace(model=m, normalize=Normalize((0.5,) * 3, (0.25,) * 3))
    images = torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    heat, probs = explain_batch(clf, images, method="saliency")
    assert heat.shape == (2, 16, 16) and float(heat.max()) == 1.0 and probs.shape == (2, 3)
    heat, _ = explain_batch(clf, images, method="gradcam", layer="net.patch_embed.proj")  # the only convolution
    assert heat.shape == (2, 16, 16)


def test_vit_tiny_224_is_timms_patch16_224_configuration():
    with torch.device("meta"):
        m = create_model("vit_tiny_224", num_classes=1000, in_chans=3)
    assert m.net.patch_embed.patch_size == (16, 16) and m.net.patch_embed.grid_size == (14, 14)
    assert sum(p.numel() for p in m.parameters()) == 5_717_416  # timm's vit_tiny_patch16_224
    small = create_model("vit_tiny_224", num_classes=2, in_chans=1, depth=1).eval()
    assert small.forward_features(torch.zeros(1, 1, 28, 28)).shape == (1, 1 + 2 * 2, 192)  # 28 padded up to 32
