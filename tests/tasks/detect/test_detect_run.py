"""A tiny detection run end to end: a few 64x64 scenes, the tiny Faster R-CNN, 2 epochs of 1 step;
the run folder's files, resume, and mAP against a hand-computed value."""

import csv
import itertools
import json

import pytest
import torch
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.data.detection import DetectionSplit
from cnnkit.errors import ConfigError
from cnnkit.tasks.detect.metrics import evaluate_map
from cnnkit.tasks.detect.model import create_detector
from cnnkit.tasks.detect.train import detect_scheduler, load_detector_checkpoint, train_detection, warmup_steps


def test_tiny_run_writes_its_files_and_resumes(tmp_path):
    cfg = tiny_cfg(tmp_path, epochs=1)
    run = train_detection(cfg, data=tiny_data(), quiet=True)
    assert sorted(p.name for p in run.iterdir()) == [
        "best.ckpt",
        "config.yaml",
        "last.ckpt",
        "metrics.csv",
        "plots",
        "report.html",
        "report.md",
        "summary.json",
    ]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"] and float(rows[0]["loss_objectness"]) > 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["split"] == "val" and summary["num_images"] == 2 and 0.0 <= summary["map_50"] <= 1.0
    ckpt = load_detector_checkpoint(run)
    assert ckpt["task"] == "detect" and ckpt["input"]["size"] == [64, 64] and ckpt["class_names"] == ["a", "b"]
    # resume with more epochs: the same folder gets epoch 2
    last = torch.load(run / "last.ckpt", weights_only=True)
    last["config"]["train"]["epochs"] = 2
    torch.save(last, run / "last.ckpt")
    train_detection(cfg, data=tiny_data(), resume=run, quiet=True)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert torch.load(run / "last.ckpt", weights_only=True)["train_state"]["epoch"] == 2


def test_unknown_anchor_key_is_an_error():
    with pytest.raises(ConfigError, match="model.kwargs: anchor_size not known"):
        create_detector("fasterrcnn_tiny", 2, 1, 64, [0.1], [0.3], {"anchor_size": [8]})


def test_map_matches_hand_computed_values():
    class Fixed(torch.nn.Module):  # two detections: one exact, one with IoU 100/160 = 0.625
        def forward(self, images):
            return [
                {
                    "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
                    "scores": torch.tensor([0.9, 0.8]),
                    "labels": torch.tensor([1, 2]),  # torchvision's labels: 1 + class
                }
            ]

    truth = DetectionSplit(
        torch.zeros(1, 1, 40, 40, dtype=torch.uint8),
        [torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 36]])],
        [torch.tensor([0, 1])],
    )
    r = evaluate_map(Fixed(), truth, ["a", "b"], torch.device("cpu"))
    # a: AP 1 at every IoU threshold; b: matched at 0.50, 0.55, 0.60 of the ten -> 0.3
    assert r["map_50"] == 1.0 and r["ap_per_class"] == {"a": 1.0, "b": 0.3} and r["map"] == 0.65


def test_a_short_run_warms_up_over_a_tenth_of_its_steps_and_a_long_one_over_fifty():
    assert (warmup_steps(20), warmup_steps(300), warmup_steps(5000), warmup_steps(3)) == (2, 30, 50, 1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = detect_scheduler(opt, 20)
    rates = []
    for _ in range(20):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[0] == pytest.approx(0.5) and rates[2] == pytest.approx(1.0)  # the full rate after 2 steps
    assert max(rates) == pytest.approx(1.0) and rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in itertools.pairwise(rates[2:]))  # cosine: never rising after warm-up
