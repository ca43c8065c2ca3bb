"""`cnnkit predict` on a detection run: boxes drawn into <stem>_boxes.png, JSON with class, score, box."""

import json

import numpy as np
from PIL import Image
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.cli import main
from cnnkit.tasks.detect.predict import Detection, draw
from cnnkit.tasks.detect.train import train_detection


def test_draw_enlarges_and_marks_the_box():
    image = np.zeros((1, 64, 64), dtype=np.uint8)
    out = draw(image, [Detection("7", 0.9, [8.0, 8.0, 24.0, 40.0])])
    assert out.shape == (256, 256, 3)
    assert tuple(out[100, 32]) == (0, 255, 0)  # the box's left edge (x 8 x 4 = 32), in lime
    assert out[200, 200].sum() == 0  # outside: untouched


def test_predict_on_a_detection_run_writes_boxes_and_json(tmp_path, capsys):
    run = train_detection(tiny_cfg(tmp_path, epochs=1), data=tiny_data(), quiet=True)
    img = tmp_path / "scene.png"
    Image.fromarray(tiny_data().train.images[0, 0].numpy()).save(img)
    out = tmp_path / "pred"
    code = main(["predict", str(run), str(img), "--format", "json", "--save-images", str(out), "--threshold", "0"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["source"] == str(img) and (out / "scene_boxes.png").is_file()
    assert Image.open(out / "scene_boxes.png").size == (256, 256)
    for d in result[0]["detections"]:  # an untrained model may find anything, but in the image and a known class
        assert d["label"] in ("a", "b") and 0 <= d["score"] <= 1 and 0 <= d["box"][0] <= d["box"][2] <= 64
