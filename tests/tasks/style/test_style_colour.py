import torch

from cnnkit.tasks.style.colour import preserve_colour, rgb_to_ycbcr, ycbcr_to_rgb


def test_ycbcr_round_trip_and_grey_has_neutral_chroma():
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5)
    grey = torch.full((1, 3, 2, 2), 0.3)
    assert torch.allclose(rgb_to_ycbcr(grey), torch.tensor([0.3, 0.5, 0.5]).view(1, 3, 1, 1).expand(1, 3, 2, 2))


def test_preserve_colour_keeps_the_contents_chroma_and_the_results_luminance():
    torch.manual_seed(0)
    content = 0.25 + 0.5 * torch.rand(1, 3, 16, 16)  # mid-range colours: no clipping needed
    stylised = 0.25 + 0.5 * torch.rand(1, 3, 16, 16)
    out = preserve_colour(stylised, content)
    yo, yc, ys = rgb_to_ycbcr(out), rgb_to_ycbcr(content), rgb_to_ycbcr(stylised)
    clipped = (ycbcr_to_rgb(torch.cat([ys[:, :1], yc[:, 1:]], 1)) != out).any(1)  # none expected, counted anyway
    assert clipped.float().mean() < 0.05
    assert (yo[:, 1:] - yc[:, 1:]).abs().mean() < 0.01  # chroma: the content's
    assert (yo[:, :1] - ys[:, :1]).abs().mean() < 0.01  # luminance: the result's
    assert (yo[:, 1:] - ys[:, 1:]).abs().mean() > 0.05  # and not the result's chroma
