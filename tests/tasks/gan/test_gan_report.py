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
