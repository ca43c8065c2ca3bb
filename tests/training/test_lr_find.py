import json
import math

import pytest
import torch
from torch import nn

from cnnkit.cli import main
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.training.lr_find import lr_range_test, suggest_lr


def test_suggestion_is_the_steepest_fall_before_the_minimum():
    lrs = [10 ** (-6 + i * 0.5) for i in range(13)]
    losses = [2.3, 2.3, 2.29, 2.25, 2.0, 1.2, 0.9, 0.8, 0.75, 0.9, 2.0, 5.0, 9.0]
    assert suggest_lr(lrs, losses) == pytest.approx(lrs[5])  # 2.0 -> 0.9 around index 5


def test_range_test_on_a_toy_problem():
    """Logistic regression on two overlapping classes: learns at moderate rates, diverges at huge ones."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (512,), generator=g)
    images = torch.zeros(512, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = (labels * 120 + torch.randint(0, 100, (512,), generator=g)).to(
        torch.uint8
    )  # informative pixel
    images[:, 0, 1, 1] = torch.randint(0, 255, (512,), generator=g).to(torch.uint8)  # noise
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    res = lr_range_test(
        model,
        Split(images, labels),
        opt,
        normalize=Normalize([0.4], [0.4]),
        batch_size=32,
        generator=g,
        start_lr=1e-4,
        end_lr=1e4,
        steps=80,
    )
    assert res.diverged and len(res.lrs) < 80  # stopped once the loss exceeded 4x its minimum
    assert res.lrs == sorted(res.lrs) and res.lrs[0] == pytest.approx(1e-4)
    assert 1e-2 <= res.suggestion <= 10, res.suggestion
    assert min(res.losses) < 0.8 * res.losses[0]


def test_lr_find_cli_writes_a_plot_and_a_suggestion(tmp_path, capsys):
    out = tmp_path / "lr.png"
    args = [
        "lr-find",
        "--subset",
        "20",
        "--batch-size",
        "25",
        "--steps",
        "30",
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 1, depth: 1}",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curve = json.loads(out.with_suffix(".json").read_text())
    assert f"suggested learning rate: {curve['suggestion']:.3g}" in printed and math.isfinite(curve["suggestion"])
    assert len(curve["lrs"]) == len(curve["losses"]) <= 30


def test_lr_find_defaults_to_a_folder_in_the_runs_folder(tmp_path, capsys):
    from tests.conftest import make_image_folder

    data = make_image_folder(tmp_path / "pets", per_class=10)
    args = [
        "lr-find",
        "--data",
        str(data),
        "--image-size",
        "12",
        "--batch-size",
        "4",
        "--steps",
        "5",
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 1, depth: 1}",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    assert main(args) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("lr-find-pets-simple_cnn-")
    assert sorted(p.name for p in folder.iterdir()) == ["lr_find.json", "lr_find.png"]
    assert f"plot: {folder / 'lr_find.png'}" in capsys.readouterr().out
    assert main([*args[:-2], "--out", str(tmp_path / "lr")]) == 0  # --out DIR: the files inside it
    assert (tmp_path / "lr" / "lr_find.png").is_file() and (tmp_path / "lr" / "lr_find.json").is_file()
