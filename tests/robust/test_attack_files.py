from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.robust.attack_files import quantize


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    root = tmp_path_factory.mktemp("digits")
    ds = build_dataset(DataConfig(), seed=0)
    for i in range(3):
        d = root / str(int(ds.test.labels[i]))
        d.mkdir(exist_ok=True)
        Image.fromarray(ds.test.images[i, 0].numpy()).resize((40, 40)).save(d / f"{i}.png")  # not the model's size
    return root


def test_attack_folder_end_to_end_and_predict_round_trip(tiny_run, digit_files, tmp_path, capsys):
    out = tmp_path / "att"
    assert (
        main(
            [
                "attack",
                str(tiny_run),
                str(digit_files),
                "--method",
                "pgd",
                "--eps",
                "0.3",
                "--steps",
                "5",
                "--restarts",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "predictions changed" in printed
    rows = list(csv.DictReader((out / "attack.csv").open()))
    assert len(rows) == 3
    assert (out / "contact_sheet.png").is_file()
    for r in rows:
        assert r["true"] == r["file"].split("/")[-2]  # the class folder names the true class
        assert 0 < float(r["linf"]) <= 0.3 + 1e-9 and float(r["l2"]) >= float(r["linf"])
        stem = f"{r['true']}_{r['file'].split('/')[-1][:-4]}"
        with Image.open(out / f"{stem}.png") as panel:
            assert panel.width > 2.2 * panel.height  # original | perturbation | adversarial
        with Image.open(out / "adversarial" / f"{stem}.png") as adv:
            assert adv.size == (28, 28) and adv.mode == "L"  # the model's input size, lossless grey
    assert sum(int(r["fooled"]) for r in rows) >= 1  # eps 0.3 moves this (barely trained) model somewhere
    # the round trip: cnnkit predict on the adversarial PNGs gives the answers the CSV reports
    assert main(["predict", str(tiny_run), str(out / "adversarial"), "--format", "csv", "--top-k", "1"]) == 0
    listed = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    predicted = {row["source"].split("/")[-1][:-4]: row["label"] for row in listed}
    expected = {f"{r['true']}_{r['file'].split('/')[-1][:-4]}": r["pred_after"] for r in rows}
    assert predicted == expected


def test_targeted_attack_on_one_image(tiny_run, digit_files, tmp_path, capsys):
    """The target: a class an untargeted attack reached on that image (this barely trained model cannot reach every class)."""
    assert (
        main(["attack", str(tiny_run), str(digit_files), "--eps", "0.3", "--steps", "5", "--out", str(tmp_path / "u")])
        == 0
    )
    fooled = [r for r in csv.DictReader((tmp_path / "u" / "attack.csv").open()) if r["fooled"] == "1"]
    assert fooled
    target = fooled[0]["pred_after"]
    out = tmp_path / "t"
    assert (
        main(
            [
                "attack",
                str(tiny_run),
                fooled[0]["file"],
                "--targeted",
                "--target",
                target,
                "--eps",
                "0.3",
                "--steps",
                "10",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert f"targeted at {target}" not in capsys.readouterr().err
    rows = list(csv.DictReader((out / "attack.csv").open()))
    assert len(rows) == 1 and rows[0]["pred_after"] == target
    assert not (out / "contact_sheet.png").exists()  # one image: no sheet


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--eps", "-0.1"], "--eps '-0.1': must be >= 0"),
        (["--eps", "8"], "--eps '8': must be <= 1"),
        (["--eps", "abc"], "--eps 'abc': not a number"),
        (["--step-size", "2"], "--step-size '2'"),
    ],
)
def test_bad_eps_names_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["attack", "RUN", "img.png", *flags])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_targeted_needs_a_target(tiny_run, digit_files, capsys):
    assert main(["attack", str(tiny_run), str(digit_files), "--targeted"]) != 0
    assert "--targeted needs --target CLASS" in capsys.readouterr().err
    assert main(["attack", str(tiny_run), str(digit_files), "--targeted", "--target", "cat"]) != 0
    assert "--target 'cat' is not one of the model's classes" in capsys.readouterr().err


def test_quantize_keeps_the_change_inside_the_ball():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    adv = (x.float() / 255 + (torch.rand(4, 3, 5, 5) * 2 - 1) * (4.7 / 255)).clamp(0, 1)
    q = quantize(x, adv, 4.7 / 255, "linf")
    assert (q.int() - x.int()).abs().max() <= 4  # whole levels, never past eps
    q2 = quantize(x, adv, 1.0, "l2")
    assert (
        ((q2.float() - x.float()) / 255)
        .flatten(1)
        .norm(dim=1)
        .le((adv - x.float() / 255).flatten(1).norm(dim=1) + 1e-6)
        .all()
    )
