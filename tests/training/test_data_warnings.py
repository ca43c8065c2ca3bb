"""training/data_warnings.py: one line for strong imbalance, one for unreadable files."""

from pathlib import Path

from tests.conftest import make_image_folder

from cnnkit.cli import main

ARGS = [
    "--image-size",
    "12",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--model",
    "simple_cnn",
    "--set",
    "model.kwargs={width: 4, stages: 1, depth: 1}",
    "--plain",
]


def test_imbalance_and_skipped_files_get_one_line_each(tmp_path, capsys):
    data = make_image_folder(tmp_path / "pets", per_class=2)
    make_image_folder(tmp_path / "pets", classes=("cat",), per_class=30)  # 30 cats, 2 dogs
    for name in ("bad1.jpg", "bad2.jpg"):
        (data / "dog" / name).write_bytes(b"\xff\xd8\xff\xe0 cut short")
    run = tmp_path / "runs" / "p"
    assert main(["train", "--data", str(data), *ARGS, "--runs-dir", str(tmp_path / "runs"), "--name", "p"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 2, err
    assert (
        "strong class imbalance: 27x more training images in 'cat' (27) than in 'dog' (1)" in lines[0]
        and "--balance sampler" in lines[0]
    )
    assert (
        lines[1].startswith("cnnkit: warning: 2 files could not be read")
        and str(run / "skipped.csv") in lines[1]
        and "bad1.jpg" in lines[1]
    )
    assert err.count("bad2.jpg") == 0  # one line, not one per file
    assert Path(run / "skipped.csv").read_text().count(".jpg") == 2


def test_no_imbalance_line_when_balanced_or_corrected(tmp_path, capsys):
    data = make_image_folder(tmp_path / "pets", per_class=2)
    make_image_folder(tmp_path / "pets", classes=("cat",), per_class=30)
    assert (
        main(["train", "--data", str(data), *ARGS, "--balance", "sampler", "--runs-dir", str(tmp_path / "runs")]) == 0
    )
    assert "imbalance" not in capsys.readouterr().err
