"""`cnnkit anchors`: the four PNGs, the anchor density on a known case, the centre location's anchors."""

import numpy as np
import torch
from PIL import Image
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.cli import main
from cnnkit.tasks.detect.anchors import density, rpn_outputs
from cnnkit.tasks.detect.model import create_detector
from cnnkit.tasks.detect.train import train_detection


def test_density_counts_covering_anchors():
    d = density(torch.tensor([[0.0, 0, 4, 4], [2, 2, 6, 6], [-5, -5, 1, 1]]), 8, 8)
    assert d[0, 0] == 2 and d[3, 3] == 2 and d[1, 1] == 1 and d[5, 5] == 1 and d[7, 7] == 0 and d.sum() == 16 + 16 + 1


def test_rpn_outputs_give_the_configured_anchors():
    model = create_detector(
        "fasterrcnn_tiny", 2, 1, 64, [0.1], [0.3], {"width": 4, "anchor_sizes": [16], "aspect_ratios": [1.0, 4.0]}
    )
    anchors, boxes, scores, per_location = rpn_outputs(model, np.zeros((1, 64, 64), dtype=np.uint8), top=5)
    assert per_location == 2 and anchors.shape == (16 * 16 * 2, 4)  # stride 4: a 16x16 grid, 2 anchors each
    sides = (anchors[:2, 2:] - anchors[:2, :2]).tolist()  # (w, h): 16x16 and, h / w = 4, 8x32
    assert sides == [[16.0, 16.0], [8.0, 32.0]]
    assert boxes.shape[0] <= 5 and ((scores >= 0) & (scores <= 1)).all()


def test_anchors_verb_writes_four_pngs(tmp_path, capsys):
    run = train_detection(tiny_cfg(tmp_path, epochs=1), data=tiny_data(), quiet=True)
    img = tmp_path / "scene.png"
    Image.fromarray(tiny_data().train.images[0, 0].numpy()).save(img)
    assert main(["anchors", str(run), str(img), "--out", str(tmp_path / "a")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["anchors_density.png", "anchors_location.png", "detections.png", "proposals.png"]
    assert Image.open(tmp_path / "a" / "proposals.png").size == (256, 256)
    capsys.readouterr()
    assert main(["anchors", str(img), str(img)]) != 0  # an image is no checkpoint: a clear error
    assert "scene.png: not a detection run or checkpoint" in capsys.readouterr().err
