import json

from cnnkit.tasks.gan.report import report_section


def test_only_a_gan_run_gets_the_section(tmp_path):
    assert report_section(tmp_path) is None  # no summary.json
    (tmp_path / "summary.json").write_text(json.dumps({"task": "segment"}))
    assert report_section(tmp_path) is None


def test_section_names_the_numbers_and_missing_files(tmp_path):
    row = {"epoch": 1, "loss_d": 1.25, "loss_g": 0.75, "d_real": 0.6, "d_fake": 0.4, "seconds": 2.0}
    summary = {"task": "gan", "dataset": "mnist", "images": 9, "shape": [1, 8, 8], "epochs": 1, "final": row}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    sid, title, body = report_section(tmp_path)
    assert title == "Generated images (DCGAN)"
    assert sid == "gan" and "discriminator loss 1.250" in body and "D(G(z)) 0.400" in body and "1x8x8" in body
    assert "(gan_curves.png is missing)" in body


def test_section_shows_quality_json(tmp_path):
    summary = {"task": "gan", "dataset": "mnist", "images": 9, "shape": [1, 8, 8], "epochs": 1, "final": {}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    _, _, body = report_section(tmp_path)
    assert "--score CLASSIFIER" in body and "gan.score_with" in body  # no numbers yet: how to get them
    q = {
        "classifier": "runs/clf/best.ckpt",
        "n_generated": 2000,
        "fid": 4.5,
        "fid_real_floor": 1.25,
        "fid_untrained_ceiling": 250.0,
        "class_shares": {"0": 0.25, "1": 0.75},
        "asked_class_share": 0.875,
    }
    (tmp_path / "quality.json").write_text(json.dumps(q))
    _, _, body = report_section(tmp_path)
    assert "<b>FID 4.500</b>" in body and "floor 1.250" in body and "untrained generator's 250.000" in body
    assert "0: 25.0%, 1: 75.0%" in body and "generated for: 87.5%" in body and "--score CLASSIFIER" not in body
