import pytest
import torch

from cnnkit.tasks.style.losses import content_loss, gram_matrix, style_loss, total_variation


def test_gram_matrix_against_a_hand_computation():
    # two channels over four positions: a = (1, 2, 3, 4), b = (0, 1, 0, -1)
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])  # (1, 2, 2, 2)
    # a.a = 1+4+9+16 = 30; a.b = 0+2+0-4 = -2; b.b = 0+1+0+1 = 2; divided by C*H*W = 8
    expected = torch.tensor([[[30.0, -2.0], [-2.0, 2.0]]]) / 8
    assert torch.allclose(gram_matrix(f), expected)


def test_gram_matrix_is_per_image_and_symmetric():
    f = torch.randn(3, 5, 4, 6)
    g = gram_matrix(f)
    assert g.shape == (3, 5, 5)
    assert torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[1], gram_matrix(f[1:2])[0])


def test_style_loss_ignores_where_textures_are_but_content_loss_does_not():
    f = torch.randn(1, 4, 6, 6)
    shuffled = f[:, :, torch.randperm(6)][:, :, :, torch.randperm(6)]  # the same responses, moved around
    assert style_loss([shuffled], [gram_matrix(f)]).item() == pytest.approx(0.0, abs=1e-6)
    assert content_loss(shuffled, f).item() > 0.1


def test_total_variation_of_a_flat_and_of_a_checkerboard_image():
    assert total_variation(torch.full((1, 3, 5, 5), 0.7)).item() == 0.0
    board = (torch.arange(4).view(1, 4) + torch.arange(4).view(4, 1)) % 2  # 0/1 checkerboard
    # every neighbour differs by 1: mean of squares 1 vertically + 1 horizontally
    assert total_variation(board.float().view(1, 1, 4, 4)).item() == pytest.approx(2.0)
