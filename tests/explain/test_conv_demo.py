import pytest
import torch
import torch.nn.functional as F

from cnnkit.cli import main
from cnnkit.errors import ConfigError
from cnnkit.explain.conv_demo import ConvDemo, conv2d, max_pool, output_size, parse_matrix


def test_parse_matrix_reads_rows_and_values():
    assert parse_matrix("3,5,2; 9, 7,5 ;2,0,-6.5") == [[3, 5, 2], [9, 7, 5], [2, 0, -6.5]]
    assert parse_matrix("1") == [[1.0]]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2;3", "rows have different lengths (row 1 has 2, row 2 has 1)"),
        ("1,x;3,4", "row 1, value 2 is 'x', not a number"),
        ("1,,2", "row 1, value 2 is '', not a number"),
        ("", "give rows separated by ';'"),
        ("1;;2", "give rows separated by ';'"),
        ("nan", "must be finite"),
        ("__import__('os')", "not a number"),
    ],
)
def test_parse_matrix_errors_name_the_problem(text, message):
    with pytest.raises(ConfigError) as e:
        parse_matrix(text, "input")
    assert message in str(e.value)
    assert "--input" in str(e.value)


def test_worked_example_from_the_issue(capsys):
    assert main(["conv-demo", "--input", "3,5,2;9,7,5;2,0,6", "--kernel", "1,0,0;1,1,0;0,0,1"]) == 0
    out = capsys.readouterr().out
    assert "3×1 + 5×0 + 2×0 + 9×1 + 7×1 + 5×0 + 2×0 + 0×0 + 6×1 = 25" in out
    assert "⌊(3 − 3 + 2·0) / 1⌋ + 1 = ⌊0 / 1⌋ + 1 = 1" in out
    assert "Feature map (1x1):\n   25" in out
    assert "needs a feature map of at least 2x2" in out


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)])
def test_conv2d_matches_torch(stride, padding):
    g = torch.Generator().manual_seed(stride * 10 + padding)
    x = torch.randint(-5, 6, (5, 6), generator=g).float()
    k = torch.randint(-2, 3, (3, 2), generator=g).float()
    ours = torch.tensor(conv2d(x.tolist(), k.tolist(), stride, padding))
    ref = F.conv2d(x[None, None], k[None, None], stride=stride, padding=padding)[0, 0]
    assert ours.shape == ref.shape
    assert ours.shape == (output_size(5, 3, padding, stride), output_size(6, 2, padding, stride))
    torch.testing.assert_close(ours, ref)
    # ReLU then 2x2 max pooling, as the demo prints them
    if min(ref.shape) >= 2:
        pooled = torch.tensor(max_pool([[max(0.0, v) for v in r] for r in ours.tolist()]))
        torch.testing.assert_close(pooled, F.max_pool2d(F.relu(ref)[None, None], 2)[0, 0])


def test_demo_text_shows_padding_pooling_and_every_window():
    demo = ConvDemo([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]], stride=1, padding=1)
    text = demo.text()
    assert demo.feature_map == conv2d(demo.input, demo.kernel, 1, 1)
    assert "Input with padding 1 (zeros around the border, 5x5)" in text
    assert "⌊(3 − 2 + 2·1) / 1⌋ + 1 = ⌊3 / 1⌋ + 1 = 4" in text
    assert "0×1 + 0×0 + 0×0 + 1×(-1) = -1" in text  # first cell: the padded corner
    assert "The other 15 positions work the same way" in text
    assert "After 2x2 max pooling, stride 2" in text and "(the largest value of each 2x2 block; 2x2)" in text


def test_demo_rejects_a_kernel_larger_than_the_input(capsys):
    assert main(["conv-demo", "--input", "1,2;3,4", "--kernel", "1,1,1;1,1,1;1,1,1"]) == 2
    assert "does not fit in the 2x2 (padded) input" in capsys.readouterr().err
    assert main(["conv-demo", "--input", "1,2;3,4", "--kernel", "1", "--stride", "0"]) == 2
    assert "--stride must be at least 1" in capsys.readouterr().err
