import pytest
import torch
from tests.tasks.style.conftest import photo, stripes

from cnnkit.models import create_model
from cnnkit.tasks.style.features import FeatureExtractor
from cnnkit.tasks.style.losses import content_loss
from cnnkit.tasks.style.networks import default_layers
from cnnkit.tasks.style.optimise import LossWeights, Objective, optimise


def tiny_objective(weights: LossWeights) -> tuple[Objective, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("simple_cnn", num_classes=2, in_chans=3, width=8, stages=3, depth=1)
    content_layer, style_layers = default_layers(model)
    ex = FeatureExtractor(model, [content_layer, *style_layers], [0.5] * 3, [0.25] * 3)
    content = torch.from_numpy(photo(32, 32)).permute(2, 0, 1)[None].float() / 255
    style = torch.from_numpy(stripes(32, 32)).permute(2, 0, 1)[None].float() / 255
    return Objective(ex, content_layer, style_layers, content, style, weights), content, style


def test_style_loss_falls_tenfold_and_content_stays_bounded():
    objective, content, style = tiny_objective(LossWeights(style=300))  # a random 3-stage net: its own balance
    seen = []
    out, start, end = optimise(content, objective, 60, "adam", lambda step, losses, img: seen.append(step))
    assert seen == list(range(1, 61))
    assert start.content == 0.0  # the start is the content image itself
    assert end.style < start.style / 10, (start, end)
    # bounded: the result stays nearer the content (at the content layer) than the style image is
    with torch.no_grad():
        style_distance = content_loss(objective.extractor(style)[objective.content_layer], objective.content_target)
    assert end.content < style_distance.item(), (end.content, style_distance.item())
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1  # pixel space, clamped


def test_feature_extractor_stops_after_the_deepest_layer_and_refuses_unknown_ones():
    model = create_model("simple_cnn", num_classes=2, in_chans=3, width=4, stages=3, depth=1)
    called = []
    model.features.stage2.register_forward_hook(lambda *a: called.append("stage2"))
    ex = FeatureExtractor(model, ["features.stage0", "features.stage1"], [0.5] * 3, [0.25] * 3)
    feats = ex(torch.rand(1, 3, 16, 16))
    assert [tuple(v.shape) for v in feats.values()] == [(1, 4, 8, 8), (1, 8, 4, 4)]
    assert called == []  # the rest of the network did not run
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="no layer 'features.stage9'"):
        FeatureExtractor(model, ["features.stage9"], [0.5] * 3, [0.25] * 3)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, steps", [("lbfgs", 100), ("adam", 100)])
def test_with_pretrained_lite0_at_64px_the_style_loss_falls_tenfold(optimizer, steps):
    """The real network (the default): ~10-20 s on a busy 2-core machine, ~3 s idle."""
    from cnnkit.tasks.style.networks import load_network

    net = load_network(None)
    ex = FeatureExtractor(net.model, [net.content_layer, *net.style_layers], net.mean, net.std)
    content = torch.from_numpy(photo(56, 64)).permute(2, 0, 1)[None].float().contiguous() / 255
    style = torch.from_numpy(stripes(64, 64)).permute(2, 0, 1)[None].float().contiguous() / 255
    objective = Objective(ex, net.content_layer, net.style_layers, content, style, LossWeights())
    _, start, end = optimise(content, objective, steps, optimizer)
    assert end.style < start.style / 10, (start, end)
    with torch.no_grad():
        style_distance = content_loss(ex(style)[net.content_layer], objective.content_target).item()
    assert end.content < style_distance, (end.content, style_distance)
