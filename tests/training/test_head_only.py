"""training/head_only.py's pieces on their own: the cached features, and fine_tune's head stage
(`warm_up_head`, the engine's loop on those features) up to the hand-over to the whole network.
The runs through `train` are in test_head_cache.py."""

import torch

from cnnkit.config import ModelConfig
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.models import create_model, transfer
from cnnkit.models import finetune as ft
from cnnkit.training import head_only


def _model():
    torch.manual_seed(0)
    return create_model("conv(8,3)-bn-relu-conv(16,3)-bn-relu-res(16)-gap-fc", num_classes=3, in_chans=1)


def _data(n: int = 60, seed: int = 0) -> Split:
    """uint8 8x8 images whose class is their brightness (dark, grey, bright, plus noise): far from
    the statistics batch norm starts with (mean 0, variance 1)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randint(0, 60, (n, 1, 8, 8), generator=g) + 90 * y[:, None, None, None]
    return Split(x.to(torch.uint8), y)


def test_warm_up_head_trains_only_the_head_on_features_computed_once():
    m, train, val = _model(), _data(60, 0), _data(30, 1)
    normalize = Normalize([0.0], [1.0], "cpu")
    ft.prepare(m, "fine_tune")
    m.train()
    feats = head_only.split_features(m, train, normalize, batch_size=20)
    assert m.training  # the mode is restored
    with torch.no_grad():
        torch.testing.assert_close(feats.images[:20], m.eval().forward_features(normalize(train.images[:20])))
    conv_before, head_before = m.features[0].weight.clone(), m.head[1].weight.clone()
    rows = head_only.warm_up_head(m, train, val, normalize, epochs=10, lr=0.1, weight_decay=0.0, batch_size=20, seed=0)
    assert len(rows) == 10 and rows[-1]["train_loss"] < 0.7 * rows[0]["train_loss"]
    assert rows[-1]["val_accuracy"] >= 0.9, rows[-1]
    assert torch.equal(m.features[0].weight, conv_before)  # the backbone is untouched
    assert not torch.equal(m.head[1].weight, head_before)  # the head learned, in the model itself


def test_fine_tune_hands_the_trained_head_to_the_whole_network_unchanged():
    """The regression behind fine_tune measuring below head-only: once the whole network trained,
    batch norm normalised by each small batch instead of the pretrained statistics the head had
    learned on, so the head's predictions fell to chance and validation accuracy fell every epoch."""
    m, train, val = _model(), _data(60, 0), _data(30, 1)
    normalize = Normalize([0.0], [1.0], "cpu")
    ft.prepare(m, "fine_tune")
    head_only.warm_up_head(m, train, val, normalize, epochs=2, lr=0.1, weight_decay=0.0, batch_size=20, seed=0)
    x = normalize(train.images)
    with torch.no_grad():
        head_logits = m.eval()(x)
    transfer.start_epoch(m, ModelConfig(name="spec", finetune="fine_tune"), 0, 5)  # the whole network's first epoch
    assert all(p.requires_grad for p in m.parameters())  # everything trains...
    bns = [b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    running = [b.running_mean.clone() for b in bns]
    out = m(x[:20])
    torch.testing.assert_close(out, head_logits[:20])  # ...starting from exactly what the head learned
    assert all(torch.equal(b.running_mean, r) for b, r in zip(bns, running))  # the pretrained statistics stay
    out.sum().backward()
    assert bns[0].weight.grad is not None  # batch norm's scale and shift still train
