import json
import shutil

import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.evaluate.api import evaluate_checkpoint
from cnnkit.evaluate.compare import compare_runs, format_comparison


def test_evaluate_writes_calibration_confusion_and_hardest(tiny_run, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["evaluate", str(tiny_run), "--plots", str(out), "--out", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "expected calibration error" in printed
    assert "weighted" in printed and "hardest examples (highest loss)" in printed
    names = {p.name for p in out.iterdir()}
    assert names == {
        "confusion_matrix.png",
        "confusion_matrix.json",
        "reliability_diagram.png",
        "hardest_examples.png",
        "metrics.json",
    }
    cm = json.loads((out / "confusion_matrix.json").read_text())
    for counts, row in zip(cm["counts"], cm["normalized"]):
        if sum(counts):
            assert sum(row) == pytest.approx(1.0, abs=1e-5)
            assert row == pytest.approx([c / sum(counts) for c in counts], abs=1e-5)
    m = json.loads((tmp_path / "m.json").read_text())
    assert 0.0 <= m["ece"] <= 1.0 and len(m["calibration"]) == 15
    losses = [h["loss"] for h in m["hardest"]]
    assert len(losses) == 16 and losses == sorted(losses, reverse=True)
    for png in ("confusion_matrix.png", "reliability_diagram.png", "hardest_examples.png"):
        with Image.open(out / png) as im:
            assert im.width >= 300 and im.height >= 300


def test_evaluate_defaults_into_the_run_folder_and_no_plots(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--split", "val"]) == 0
    assert (tiny_run / "evaluation" / "own-val" / "reliability_diagram.png").is_file()
    assert main(["evaluate", str(tiny_run), "--split", "train", "--no-plots"]) == 0
    assert not (tiny_run / "evaluation" / "own-train").exists()
    assert "wrote" not in capsys.readouterr().out.split("hardest examples")[-1]


def test_evaluate_agrees_with_the_training_run(tiny_run):
    m = evaluate_checkpoint(tiny_run)
    stored = json.loads((tiny_run / "test_metrics.json").read_text())
    assert m["accuracy"] == pytest.approx(stored["accuracy"])
    assert m["confusion_matrix"] == stored["confusion_matrix"]


def test_compare_prints_key_numbers_and_per_class_differences(tiny_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other, ignore=shutil.ignore_patterns("*.ckpt", "explain", "evaluation"))
    metrics = json.loads((other / "test_metrics.json").read_text())
    first = metrics["class_names"][0]
    metrics["per_class"][first]["f1"] -= 0.25
    metrics["accuracy"] = 0.5
    (other / "test_metrics.json").write_text(json.dumps(metrics))
    assert main(["compare", str(tiny_run), str(other)]) == 0
    out = capsys.readouterr().out
    acc_line = next(line for line in out.splitlines() if line.startswith("accuracy"))
    assert (
        f"{json.loads((tiny_run / 'test_metrics.json').read_text())['accuracy']:.2%}" in acc_line
        and "50.00%" in acc_line
    )
    assert "(-0.2500)" in out
    assert f"largest change: class {first} in other, F1 -0.2500" in out
    assert main(["compare", str(tiny_run)]) == 2
    assert "at least two run folders" in capsys.readouterr().err
    assert "no summary.json" in _error(lambda: compare_runs([tiny_run, tmp_path]))


def _error(fn) -> str:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return str(e)
    return ""


def test_format_comparison_skips_per_class_for_different_classes(tiny_run, tmp_path):
    other = tmp_path / "o"
    shutil.copytree(tiny_run, other, ignore=shutil.ignore_patterns("*.ckpt", "explain", "evaluation"))
    metrics = json.loads((other / "test_metrics.json").read_text())
    metrics["class_names"] = ["x"] * len(metrics["class_names"])
    (other / "test_metrics.json").write_text(json.dumps(metrics))
    text = format_comparison(compare_runs([tiny_run, other]))
    assert "not compared per class (different classes from tiny): o" in text


def test_evaluate_with_test_time_augmentation(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--split", "val", "--tta", "flip", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "TTA            flip" in out
    m = evaluate_checkpoint(tiny_run, split="val", tta="flip")
    plain = evaluate_checkpoint(tiny_run, split="val")
    assert m["tta"] == "flip" and "tta" not in plain
    assert sum(map(sum, m["confusion_matrix"])) == m["num_samples"] == plain["num_samples"]
    assert m["loss"] != plain["loss"]  # the softmax was averaged over flipped views
