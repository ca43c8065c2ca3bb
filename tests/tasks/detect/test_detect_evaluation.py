"""`cnnkit evaluate` on a detection run and the detection report: PR curves and per-class AP against
hand-computed values, the per-image F1 that ranks good / bad cases, the files and the numbers in them."""

import json
import re

import pytest
import torch
from PIL import Image
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.cli import main
from cnnkit.data.detection import DetectionSplit
from cnnkit.tasks.detect.evaluation import image_f1
from cnnkit.tasks.detect.metrics import score_detections
from cnnkit.tasks.detect.train import train_detection


def test_pr_curve_and_ap50_match_hand_computed_values():
    # class a: two true boxes; detections by score: hit (0.9), miss (0.8), hit (0.7) -> precision 1 up to
    # recall 0.5, then 2/3 up to recall 1 (COCO interpolation); AP@0.5 = (51 * 1 + 50 * 2/3) / 101
    truth = DetectionSplit(
        torch.zeros(1, 1, 64, 64, dtype=torch.uint8),
        [torch.tensor([[0.0, 0, 10, 10], [30, 30, 40, 40]])],
        [torch.tensor([0, 0])],
    )
    preds = [
        {
            "boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [30, 30, 40, 40]]),
            "scores": torch.tensor([0.9, 0.8, 0.7]),
            "labels": torch.tensor([0, 0, 0]),
        }
    ]
    r = score_detections(preds, truth, ["a", "b"])
    curve = r["pr_curves"]["precision"]["a"]
    assert r["pr_curves"]["recall"][50] == 0.5 and len(curve) == 101
    assert curve[:51] == [1.0] * 51 and curve[51:] == [0.6667] * 50
    assert r["ap50_per_class"] == {"a": round((51 + 50 * 2 / 3) / 101, 4)} == {"a": 0.835}
    assert r["map_50"] == 0.835


def test_image_f1_counts_matches_of_the_right_class():
    truth, labels = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([0, 1])
    pred = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]),
        "scores": torch.tensor([0.9, 0.8, 0.3]),  # the third is below 0.5: not counted
        "labels": torch.tensor([0, 0, 1]),  # the second has the wrong class
    }
    assert image_f1(truth, labels, pred) == 2 * 1 / (2 + 2)
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
    assert image_f1(torch.zeros(0, 4), torch.zeros(0), empty) == 1.0 and image_f1(truth, labels, empty) == 0.0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_detection(tiny_cfg(tmp_path_factory.mktemp("det")), data=tiny_data(), quiet=True)


def test_evaluate_writes_metrics_curves_and_boxes(run, capsys, monkeypatch):
    import cnnkit.tasks.detect.train as train

    monkeypatch.setattr(train, "load_detection_data", lambda cfg: tiny_data())  # the run's own data
    assert main(["evaluate", str(run)]) == 0
    text = capsys.readouterr().out
    out = run / "evaluation" / "own-val"
    m = json.loads((out / "metrics.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert m["task"] == "detect" and m["split"] == "val" and m["num_images"] == 2
    assert (
        m["map_50"] == summary["map_50"] and m["map"] == summary["map"]
    )  # best.ckpt on val, as at the end of training
    assert set(m["ap_per_class"]) == {"a", "b"} and len(m["pr_curves"]["precision"]["a"]) == 101
    assert sorted(m["cases"]["good"]) == [0, 1] and m["seconds_per_image"] > 0
    assert f"mAP@0.5        {m['map_50']:.4f}" in text and "AP@[.5:.95]" in text
    assert Image.open(out / "pr_curves.png").size == (600, 450)
    assert Image.open(out / "boxes_good.png").size == (2 * 192 + 3 * 4, 192 + 2 * 4)  # 2 images, 4 px gaps


def test_report_holds_the_detection_numbers_and_pictures(run):
    summary = json.loads((run / "summary.json").read_text())
    page = (run / "report.html").read_text()
    assert "Object detection" in page and f"mAP@0.5 {summary['map_50']:.4f}" in page
    assert f"<tr><td>a</td><td>{summary['ap50_per_class']['a']:.4f}</td>" in page
    assert page.count("data:image/png;base64,") == 4  # PR curves, loss curves, good and bad boxes
    md = (run / "report.md").read_text()
    assert f"**mAP@0.5 {summary['map_50']:.4f}**" in md and "plots/pr_curves.png" in md
    for name in ("pr_curves.png", "detect_curves.png", "boxes_good.png", "boxes_bad.png", "metrics.json"):
        assert (run / "plots" / name).is_file()
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0  # rebuilt from the run folder: the same section
    section = re.compile(r'<section id="detect">.*?</section>', re.S)
    assert section.search((run / "report.html").read_text()).group(0) == section.search(page).group(0)
