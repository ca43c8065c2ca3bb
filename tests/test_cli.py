import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.config import DataConfig
from cnnkit.data import build_dataset

TINY = [
    "--subset",
    "40",
    "--epochs",
    "4",
    "--batch-size",
    "25",
    "--model",
    "simple_cnn",
    "--set",
    "model.kwargs={width: 8}",
    "--threads",
    "1",  # a fixed count: with threads following the machine's load, float sums (and so metrics) could differ
    "--plain",
]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("cli_runs")
    assert main(["train", *TINY, "--runs-dir", str(runs), "--name", "e2e"]) == 0
    return runs / "e2e"


@pytest.fixture(scope="module")
def mini_test_pngs(tmp_path_factory):
    """The whole mnist-mini test split as PNG files in class folders."""
    root = tmp_path_factory.mktemp("pngs")
    ds = build_dataset(DataConfig(), seed=0)
    for i, (img, label) in enumerate(zip(ds.test.images, ds.test.labels)):
        d = root / str(int(label))
        d.mkdir(exist_ok=True)
        Image.fromarray(img[0].numpy()).save(d / f"{i:04d}.png")
    return root


def test_train_writes_every_file(cli_run, capsys):
    names = {p.name for p in cli_run.iterdir()}
    assert {"config.yaml", "metrics.csv", "summary.json", "best.ckpt", "last.ckpt", "report.md", "plots"} <= names
    assert {p.name for p in (cli_run / "plots").iterdir()} == {"learning_curves.png", "confusion_matrix.png"}


def test_evaluate_agrees_with_summary(cli_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(cli_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    m = json.loads(out.read_text())
    summary = json.loads((cli_run / "summary.json").read_text())
    assert m["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-9)
    assert m["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)
    assert len(m["per_class"]) == 10 and len(m["confusion_matrix"]) == 10
    assert sum(map(sum, m["confusion_matrix"])) == 2000
    assert "top-5 accuracy" in printed and "precision" in printed and "confusion matrix" in printed


def test_predict_agrees_with_summary(cli_run, mini_test_pngs, capsys):
    code = main(["predict", str(cli_run / "best.ckpt"), str(mini_test_pngs), "--format", "json", "--top-k", "1"])
    assert code == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert len(preds) == 2000
    correct = sum(p["label"] == Path(p["source"]).parent.name for p in preds)
    summary = json.loads((cli_run / "summary.json").read_text())
    assert correct / 2000 == pytest.approx(summary["test"]["accuracy"], abs=1e-9)
    assert summary["test"]["accuracy"] > 0.6  # it learned: chance is 0.1


def test_evaluate_on_an_image_folder(cli_run, mini_test_pngs, capsys):
    assert main(["evaluate", str(cli_run), "--data", str(mini_test_pngs), "--split", "val"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_predict_formats_and_bad_file(cli_run, mini_test_pngs, tmp_path, capsys):
    files = sorted((mini_test_pngs / "3").iterdir())[:2]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    code = main(["predict", str(cli_run), *map(str, files), str(bad), "--format", "csv", "--top-k", "2"])
    captured = capsys.readouterr()
    rows = list(csv.DictReader(captured.out.splitlines()))
    assert code == 1 and len(rows) == 4 and rows[0]["rank"] == "1"
    assert "could not read" in captured.err and "bad.jpg" in captured.err
    assert main(["predict", str(cli_run), str(files[0])]) == 0
    assert str(files[0]) in capsys.readouterr().out


def test_config_typo_is_rejected_with_a_suggestion(capsys, tmp_path):
    assert main(["train", "--set", "optim.lrr=0.1", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'optim.lrr'" in err and "Did you mean 'optim.lr'" in err
    assert not any(tmp_path.iterdir())


def test_config_file_reproduces_the_run(cli_run, capsys):
    assert main(["train", "--config", str(cli_run / "config.yaml"), "--quiet"]) == 0
    again = cli_run.parent / "e2e-2"
    a = json.loads((cli_run / "summary.json").read_text())["test"]
    b = json.loads((again / "summary.json").read_text())["test"]
    assert a == b


def test_corrupt_image_in_folder_dataset_is_reported_by_name(tmp_path, capsys):
    from tests.conftest import make_image_folder

    data = make_image_folder(tmp_path / "pets", per_class=5)
    (data / "dog" / "truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    args = [
        "train",
        "--data",
        str(data),
        "--image-size",
        "12",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        "pets",
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 2, depth: 1}",
        "--quiet",
    ]
    assert main(args) == 0
    assert "truncated.jpg" in capsys.readouterr().err
    skipped = (tmp_path / "runs" / "pets" / "skipped.csv").read_text()
    assert "truncated.jpg" in skipped
    assert "truncated.jpg" in (tmp_path / "runs" / "pets" / "report.md").read_text()
    assert main([*args[:-1], "--strict", "--quiet"]) == 2
    assert "truncated.jpg" in capsys.readouterr().err


def test_models_and_datasets_lists(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "simple_cnn" in out and "lenet5" in out and "61,706" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "mnist-mini" in out and "mnist " in out and "folder" in out


def test_missing_checkpoint_is_a_clean_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.ckpt")]) == 2
    assert "nope.ckpt: checkpoint not found" in capsys.readouterr().err


def test_building_the_parser_imports_no_torch():
    """Every area's commands.py keeps its heavy imports inside the commands, so `cnnkit --help` stays fast."""
    import subprocess
    import sys

    code = "import sys; from cnnkit.cli import build_parser; build_parser(); print(sorted({'torch', 'numpy', 'PIL', 'yaml'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_precision_flag_takes_auto_like_the_config_key():
    """--precision offers every value runtime.precision takes, auto (bf16 where native) included."""
    from cnnkit.cli import build_parser
    from cnnkit.training.flags import build_config

    for value in ("fp32", "bf16", "fp16", "auto"):
        args = build_parser().parse_args(["train", "--dataset", "mnist-mini", "--precision", value])
        assert build_config(args).runtime.precision == value


def test_a_bf16_run_headline_is_what_evaluate_reproduces(tmp_path, capsys):
    """Training in bf16 (validation included), the final evaluation runs in fp32 as evaluate does:
    the same loss to float precision, not bf16's three digits."""
    argv = ["train", *TINY[:3], "2", *TINY[4:], "--precision", "bf16", "--runs-dir", str(tmp_path), "--name", "b"]
    assert main(argv) == 0
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "b"), "--out", str(out)]) == 0
    m, summary = json.loads(out.read_text()), json.loads((tmp_path / "b" / "summary.json").read_text())
    assert m["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-9)
    assert m["loss"] == pytest.approx(summary["test"]["loss"], rel=1e-5)
