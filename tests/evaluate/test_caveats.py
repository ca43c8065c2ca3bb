"""The headline number's caveat (validation chose the epoch) and the calibration sentence."""

import json

import pytest
from tests.conftest import make_image_folder, tiny_train_args

from cnnkit.evaluate.caveats import calibration_gap, calibration_note, result_text, selection_note


def _bins(acc, conf, count=10):
    return [{"lower": 0.5, "upper": 1.0, "count": count, "accuracy": acc, "confidence": conf}]


def test_calibration_gap_sign_and_note():
    assert calibration_gap(_bins(0.9, 0.7) + _bins(0.5, 0.5, 30)) == pytest.approx(0.05)
    under = calibration_note({"calibration": _bins(0.95, 0.80)}, label_smoothing=0.1)
    assert "under-confident" in under and "15.0 points" in under and "optim.label_smoothing 0.1" in under
    assert "label smoothing" not in calibration_note({"calibration": _bins(0.95, 0.80)}, label_smoothing=0.0).lower()
    over = calibration_note({"calibration": _bins(0.70, 0.90)}, label_smoothing=0.1)
    assert "over-confident" in over and "20.0 points" in over and "smoothing" not in over
    assert calibration_note({"calibration": _bins(0.9, 0.895)}, label_smoothing=0.1) is None


def test_selection_note_only_for_val():
    assert selection_note("test") is None
    assert "optimistic: used for model selection" in selection_note("val")
    assert result_text("test accuracy 90.00%", 3, "test") == "test accuracy 90.00% (best epoch 3)"
    assert "optimistic: used for model selection" in result_text("val accuracy 90.00%", 3, "val")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    from cnnkit.cli import main

    tmp = tmp_path_factory.mktemp("honest")
    root = make_image_folder(tmp / "im", per_class=10)
    args = tiny_train_args(root, tmp / "runs", "--name", "v", epochs=1, batch_size=8)
    assert main(args) == 0
    return tmp / "runs" / "v"


def test_no_test_split_final_line_report_and_evaluate_say_optimistic(folder_run, capsys):
    from cnnkit.cli import main

    report = (folder_run / "report.md").read_text()
    assert "| val accuracy |" in report and "optimistic: used for model selection" in report
    assert "epoch chosen on this same split" in report
    page = (folder_run / "report.html").read_text()
    assert (
        "No test split:</b> this is the validation accuracy of the epoch chosen on this same split (optimistic: used for model selection)"
        in page
    )
    assert "blue: accuracy per confidence bin" in page
    assert main(["evaluate", str(folder_run), "--out", str(folder_run / "ev.json")]) == 0
    out = capsys.readouterr().out
    assert "im val: 2 images" in out and "optimistic: used for model selection" in out
    ev = json.loads((folder_run / "ev.json").read_text())
    assert (
        ev.get("calibration_note") is None or ev["calibration_note"].removeprefix("Calibration: ") in out
    )  # the gap's sign, when over a point
    assert (folder_run / "evaluation" / "own-val" / "reliability_diagram.png").is_file()
    assert json.loads((folder_run / "ev.json").read_text())["split"] == "val"
    assert main(["evaluate", str(folder_run), "--split", "test"]) == 2
    assert "has no test split" in capsys.readouterr().err


def test_reliability_legend_says_accuracy_per_bin(tmp_path, monkeypatch):
    import matplotlib.figure

    from cnnkit.evaluate.plots import plot_reliability_diagram

    seen = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda self, *a, **k: seen.append(self))
    plot_reliability_diagram(_bins(0.9, 0.8), 0.1, tmp_path / "r.png")
    labels = [t.get_text() for t in seen[0].axes[0].get_legend().get_texts()]
    assert "accuracy of the images in each confidence bin" in labels
    assert any("mean confidence" in t for t in labels) and any("accuracy = confidence" in t for t in labels)
