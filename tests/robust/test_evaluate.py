from __future__ import annotations

import csv
import itertools
import json
import shutil

import pytest
import torch
from tests.robust.conftest import identity
from torch import nn

from cnnkit.cli import main
from cnnkit.robust.attacks import pixel_forward
from cnnkit.robust.evaluate import GRAY_EPS, PHOTO_EPS, default_eps, robust_accuracy
from cnnkit.robust.report import report_section

EPS = [0.0, 0.02, 0.05, 0.1, 0.2, 0.4]


@pytest.fixture(scope="module")
def curve(task, plain_model):
    _, (xt, yt) = task
    return robust_accuracy(pixel_forward(plain_model, identity), xt[:128], yt[:128], EPS, steps=10, restarts=2)


def test_accuracy_falls_weakly_as_eps_grows(curve):
    pgd = [r["pgd"] for r in curve["rows"]]
    fgsm = [r["fgsm"] for r in curve["rows"]]
    assert all(b <= a for a, b in itertools.pairwise(pgd)), pgd
    assert all(b <= a for a, b in itertools.pairwise(fgsm)), fgsm
    assert pgd[0] > 0.95 and pgd[0] == curve["clean_accuracy"]  # eps 0 is the clean accuracy


def test_pgd_is_never_weaker_than_fgsm(curve):
    for r in curve["rows"]:
        assert r["pgd"] <= r["fgsm"], r


def test_an_undefended_model_is_near_zero_at_a_large_eps(curve):
    assert curve["rows"][-1]["pgd"] < 0.02
    assert not curve["gradients_masked"] and curve["warnings"] == []


def test_restarts_are_reported(curve, tmp_path):
    from cnnkit.robust.evaluate import write_robust_files

    assert curve["restarts"] == 2 and curve["steps"] == 10
    result = {k: v for k, v in curve.items() if k != "_adv"}
    write_robust_files(
        result, lambda x: torch.zeros(len(x), 2), torch.rand(3, 1, 4, 4), torch.zeros(3, dtype=torch.long), {}, tmp_path
    )
    rows = list(csv.DictReader((tmp_path / "robust.csv").open()))
    assert [r["restarts"] for r in rows] == ["2"] * len(EPS) and rows[-1]["eps"] == "0.4"
    assert json.loads((tmp_path / "robust.json").read_text())["restarts"] == 2


class _Rounded(nn.Module):
    """A hard quantisation inside: the input gradient is zero everywhere (gradient masking)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner((x * 0.1 + 0.5).round())


def test_masked_gradients_are_flagged_not_praised(task, plain_model):
    _, (xt, yt) = task
    masked = robust_accuracy(pixel_forward(_Rounded(plain_model), identity), xt, yt, [0.0, 0.1], steps=5)
    assert masked["rows"][-1]["pgd"] > 0.5  # the attack gets nowhere...
    assert masked["gradients_masked"]  # ...and that is called out, not reported as robustness
    assert masked["gradient_health"]["zero_or_nonfinite_gradient_share"] == 1.0
    assert (
        "gradients look masked: the input gradient is zero or not finite for 100% of the images"
        in masked["warnings"][0]
    )
    assert "robust accuracy is not trustworthy" in masked["warnings"][0]


def test_pgd_that_does_not_raise_the_loss_is_flagged(task, plain_model):
    from cnnkit.robust.evaluate import guards

    _, (xt, yt) = task
    rows = [
        {"eps": 0.0, "fgsm": 0.9, "pgd": 0.9, "pgd_loss": 0.2},
        {"eps": 0.1, "fgsm": 0.8, "pgd": 0.85, "pgd_loss": 0.15},
    ]
    g = guards(pixel_forward(plain_model, identity), xt[:32], yt[:32], rows, clean_loss=0.2)
    assert g["gradients_masked"]
    assert g["warnings"][0].startswith(
        "gradients look masked: PGD did not raise the loss at eps 0.1 (0.2000 -> 0.1500)"
    )
    assert "PGD weaker than FGSM at eps 0.1 (85.0% vs 80.0%)" in g["warnings"][1]


def test_default_eps_per_input_range():
    assert default_eps(1) == list(GRAY_EPS) and default_eps(3) == list(PHOTO_EPS)
    assert PHOTO_EPS[-1] == pytest.approx(8 / 255) and GRAY_EPS[-1] == 0.3


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    shutil.rmtree(dst / "robust", ignore_errors=True)
    return dst


def test_robust_eval_verb_writes_results_and_the_report_section(run_copy, capsys):
    assert report_section(run_copy) is None  # nothing yet
    assert (
        main(["robust-eval", str(run_copy), "--n", "24", "--eps", "0,0.1,0.3", "--steps", "3", "--restarts", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert "PGD-3 with 2 restarts" in out and "0.3" in out
    r = json.loads((run_copy / "robust" / "robust.json").read_text())
    assert r["n"] == 24 and [row["eps"] for row in r["rows"]] == [0, 0.1, 0.3] and r["restarts"] == 2
    assert (run_copy / "robust" / "accuracy_vs_eps.png").stat().st_size > 5000
    for e in r["examples"]:
        assert (run_copy / "robust" / e["file"]).is_file() and e["before"] != e["after"]
    sid, title, body = report_section(run_copy)
    assert (sid, title) == ("robustness", "Robustness") and body.count("<img") == 1 + len(r["examples"])
    from cnnkit.report.html import write_html_report

    assert '<section id="robustness"><h2>Robustness</h2>' in write_html_report(run_copy).read_text()


def test_evaluate_robust_flag_runs_the_same(run_copy, capsys):
    assert (
        main(
            [
                "evaluate",
                str(run_copy),
                "--no-plots",
                "--robust",
                "--robust-n",
                "12",
                "--robust-eps",
                "0,0.2",
                "--robust-steps",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "accuracy" in out and "robust accuracy" in out and "PGD-2 with 1 restart" in out
    assert json.loads((run_copy / "robust" / "robust.json").read_text())["n"] == 12


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["robust-eval", "RUN", "--eps", "0,-1"], "--eps"),
        (["evaluate", "RUN", "--robust", "--robust-eps", "0,x"], "--robust-eps"),
    ],
)
def test_bad_eps_lists_name_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert f"{flag} " in capsys.readouterr().err
