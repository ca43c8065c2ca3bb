import pytest
import torch

from cnnkit.models import create_model
from cnnkit.models.fastnet import VARIANTS, Whiten, conv3x3


def test_whitening_stem_decorrelates_the_training_patches():
    torch.manual_seed(0)
    mix = torch.tensor([[1.0, 0.9, 0.8], [0.0, 0.5, 0.4], [0.0, 0.0, 0.2]])
    images = torch.einsum("dc,nchw->ndhw", mix, torch.randn(64, 3, 8, 8))  # strongly correlated channels
    stem = Whiten(3)
    stem.init_from_data(images, eps=1e-9)
    assert stem.weight.shape == (24, 3, 2, 2) and not stem.weight.requires_grad
    out = torch.nn.functional.conv2d(images, stem.weight[:12])  # (N, 12, 7, 7): one response per eigenvector
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = flat.T @ flat / len(flat)
    torch.testing.assert_close(cov, torch.eye(12), atol=1e-3, rtol=0)  # unit variance, uncorrelated
    torch.testing.assert_close(stem.weight[12:], -stem.weight[:12])  # and the negatives


def test_whitening_stem_runs_no_convolution_backward():
    stem = Whiten(1)
    y = stem(torch.randn(2, 1, 6, 6))
    y.sum().backward()
    assert stem.weight.grad is None and stem.bias.grad is not None


def test_dirac_init_passes_the_input_through_the_first_filters():
    conv = conv3x3(4, 6)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(conv(x)[:, :4], x)


@pytest.mark.parametrize(
    "name,in_chans,size,shape",
    [
        ("fastnet_t", 1, 28, (64, 3, 3)),
        ("fastnet_s", 3, 32, (128, 3, 3)),
        ("fastnet_m", 3, 32, (256, 3, 3)),
        ("fastnet_l", 3, 32, (512, 3, 3)),
    ],
)
def test_variants_shapes_and_heads(name, in_chans, size, shape):
    with torch.device("meta"):
        m = create_model(name, num_classes=10, in_chans=in_chans)
        x = torch.zeros(2, in_chans, size, size)
        assert m.forward_features(x).shape[1:] == shape
        assert m(x).shape == (2, 10)
    assert m.fc.in_features == (9 * shape[0] if VARIANTS[name].head == "grid" else shape[0])
    assert all(
        bn.weight.requires_grad == VARIANTS[name].bn_scale for bn in m.modules() if isinstance(bn, torch.nn.BatchNorm2d)
    )


def test_init_from_data_is_a_no_op_without_a_whitening_stem():
    m = create_model("fastnet_t", num_classes=10, in_chans=1)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.init_from_data(torch.randn(4, 1, 28, 28))
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
