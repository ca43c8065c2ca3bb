"""A tiny segmentation run end to end through the same engine as classification: train (CLI,
in-process) -> run folder with metrics, samples and report -> predict masks and overlays; a
run interrupted mid-epoch resumes to the same weights; the U-Net learns an easy scene."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tests.data.segment_pairs import make_pairs
from tests.training.crash import Crash, crash_at

from cnnkit.checkpoint import load_checkpoint
from cnnkit.cli import main
from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training.trainer import train

TINY = {
    "data.dataset": "folder",
    "data.task": "segment",
    "data.cache": False,
    "model.name": "unet",
    "model.kwargs": {"width": 4, "depth": 2},
    "train.epochs": 2,
    "train.batch_size": 4,
    "runtime.num_threads": 1,
    "run.html_report": False,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), n=10, size=32, classes=3)


@pytest.fixture(scope="module")
def cli_run(data_dir, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    args = [
        "train",
        "--task",
        "segment",
        "--data",
        str(data_dir),
        "--model",
        "unet",
        "--set",
        "model.kwargs={width: 4, depth: 2}",
    ]
    args += [
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--runs-dir",
        str(runs),
        "--name",
        "seg",
        "--quiet",
    ]
    assert main(args) == 0
    return runs / "seg"


def test_run_folder_has_segmentation_metrics_samples_and_report(cli_run):
    summary = json.loads((cli_run / "summary.json").read_text())
    assert summary["task"] == "segment" and summary["model"] == "unet" and summary["num_classes"] == 3
    final = json.loads((cli_run / "val_metrics.json").read_text())
    assert final["task"] == "segment" and 0.0 <= final["miou"] <= 1.0
    assert final["num_pixels"] == final["num_samples"] * 32 * 32
    assert summary["val"]["miou"] == final["miou"] and summary["val"]["accuracy"] == final["pixel_accuracy"]
    assert len(final["confusion_matrix"]) == 3 and sum(map(sum, final["confusion_matrix"])) == final["num_pixels"]
    sheet = Image.open(cli_run / "plots" / "segment_samples.png")
    n = len(final["samples"]["indices"])
    assert sheet.size == (4 * 32 + 3 * 4, n * 32 + (n - 1) * 4)  # image | truth | prediction | errors per row
    rows = (cli_run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and 0.0 <= float(rows[-1].split(",")[2]) <= 1.0  # train pixel accuracy, a fraction
    ckpt = load_checkpoint(cli_run / "best.ckpt")
    assert ckpt["task"] == "segment" and ckpt["model"]["name"] == "unet"
    page = (cli_run / "report.html").read_text()
    assert 'id="segmentation"' in page and "Pixel confusion matrix" in page and "mIoU" in page
    assert 'id="config"' in page and "segment:" in page and "loss: ce" in page  # the task's own config keys
    report = (cli_run / "report.md").read_text()
    assert "| val accuracy |" in report and f"| val mean IoU | **{final['miou']:.4f}**" in report
    assert "| class | train pixels |" in report


def test_predict_writes_a_palette_mask_and_an_overlay(cli_run, data_dir, tmp_path, capsys):
    image = data_dir / "images" / "03.png"
    assert main(["predict", str(cli_run), str(image), "--save-images", str(tmp_path)]) == 0
    mask = Image.open(tmp_path / "03_mask.png")
    assert mask.mode == "P" and mask.size == (32, 32)
    assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 1, 2}
    overlay = Image.open(tmp_path / "03_overlay.png")
    assert overlay.mode == "RGB" and overlay.size == (32, 32)
    out = capsys.readouterr().out
    assert "03_mask.png" in out and "03.png" in out


def test_predict_tiles_images_larger_than_the_training_ones(cli_run, tmp_path, capsys):
    from cnnkit.tasks.segment.predict import Segmenter

    seg = Segmenter(cli_run)
    assert seg.size == (32, 32) and seg.tiling(70, 40) is None  # a folder run resizes to its size (data.image_size)
    seg.size = None  # as a run that kept its images' size (isbi2012-membrane, mnist-scenes)
    assert seg.tiling(64, 64) is None and seg.tiling(70, 40) == (32, 8)  # beyond twice the side: tiles of it
    assert Segmenter(cli_run, tile=24).tiling(30, 30) == (24, 6)  # --tile: always, at the image's resolution
    big = np.random.default_rng(0).integers(0, 256, (80, 72)).astype(np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    args = ["predict", str(cli_run), str(tmp_path / "big.png"), "--tile", "24", "--overlap", "8", "--tta", "flip"]
    assert main([*args, "--save-images", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "big_mask.png").size == (72, 80)
    assert "big_mask.png" in capsys.readouterr().out


def test_evaluate_rescores_the_run_with_the_same_numbers(cli_run, capsys, tmp_path):
    assert main(["evaluate", str(cli_run)]) == 0
    final = json.loads((cli_run / "val_metrics.json").read_text())
    out = capsys.readouterr().out
    assert f"mean IoU        {final['miou']:.4f}" in out and "IoU      Dice" in out
    saved = json.loads((cli_run / "evaluation" / "own-val" / "metrics.json").read_text())
    assert saved["miou"] == pytest.approx(final["miou"]) and saved["confusion_matrix"] == final["confusion_matrix"]
    assert (cli_run / "evaluation" / "own-val" / "samples.png").is_file()
    assert main(["evaluate", str(cli_run), "--tta", "flip", "--no-plots", "--out", str(tmp_path / "tta.json")]) == 0
    flipped = json.loads((tmp_path / "tta.json").read_text())
    assert flipped["tta"] == "flip" and flipped["num_pixels"] == final["num_pixels"]
    assert flipped["loss"] != pytest.approx(final["loss"], rel=1e-6)  # the mirror images' scores were averaged in
    assert main(["evaluate", str(cli_run), "--tta", "flip+shift"]) != 0
    assert "--tta flip+shift: segmentation models support --tta flip or d4" in capsys.readouterr().err
    assert main(["evaluate", str(cli_run), "--tta", "d4", "--no-plots", "--out", str(tmp_path / "d4.json")]) == 0
    d4 = json.loads((tmp_path / "d4.json").read_text())
    assert (
        d4["tta"] == "d4" and d4["num_pixels"] == final["num_pixels"] and d4["loss"] != pytest.approx(flipped["loss"])
    )


def _cfg(data_dir, runs, name, **extra) -> Config:
    return Config().with_overrides(
        {**TINY, "data.path": str(data_dir), "run.runs_dir": str(runs), "run.name": name, **extra}
    )


def test_interrupted_segmentation_run_resumes_to_the_same_weights(data_dir, tmp_path):
    extra = {"train.checkpoint_every": 1, "augment.hflip": True, "augment.rotate": 10.0}
    ref = train(_cfg(data_dir, tmp_path, "ref", **extra), quiet=True)
    with pytest.raises(Crash):
        train(_cfg(data_dir, tmp_path, "r", **extra), quiet=True, on_step=crash_at(2, 1))
    resumed = train(resume=tmp_path / "r", quiet=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(resumed.metrics) == strip(ref.metrics)
    a = torch.load(ref.dir / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(resumed.dir / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unet_learns_an_easy_scene(data_dir, tmp_path):
    cfg = _cfg(
        data_dir,
        tmp_path,
        "learn",
        **{"train.epochs": 12, "optim.name": "adamw", "optim.lr": 0.02, "augment.translate": 0},
    )
    run = train(cfg, quiet=True)
    final = json.loads((run.dir / "val_metrics.json").read_text())
    background = final["per_class"]["0"]["support"] / final["num_pixels"]
    assert final["pixel_accuracy"] > background + 0.05  # better than calling everything background
    assert final["per_class"]["1"]["iou"] > 0.5  # the bright squares are found


def test_settings_without_meaning_for_masks_are_refused(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="eval.tta: flip\\+shift .* segmentation supports none, flip, d4"):
        train(_cfg(data_dir, tmp_path, "tta", **{"eval.tta": "flip+shift"}), quiet=True)
    run = train(_cfg(data_dir, tmp_path, "d4", **{"eval.tta": "d4"}), quiet=True)  # the rotations: accepted
    assert json.loads((run.dir / "val_metrics.json").read_text())["tta"] == "d4"
    with pytest.raises(ConfigError, match="augment.brightness"):
        train(_cfg(data_dir, tmp_path, "b", **{"augment.brightness": 0.3}), quiet=True)


def test_a_bf16_run_headline_is_what_evaluate_reproduces(data_dir, tmp_path, capsys):
    """Trained (and validated each epoch) in bf16, the final scores are fp32's, as `cnnkit evaluate`'s are."""
    run = train(_cfg(data_dir, tmp_path, "bf", **{"runtime.precision": "bf16"}), quiet=True)
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run.dir), "--no-plots", "--out", str(out)]) == 0
    final, again = json.loads((run.dir / "val_metrics.json").read_text()), json.loads(out.read_text())
    assert again["loss"] == pytest.approx(final["loss"], rel=1e-5) and again["miou"] == pytest.approx(final["miou"])
