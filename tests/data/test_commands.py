import json

import numpy as np
from tests.conftest import make_image_folder

from cnnkit.cli import main
from cnnkit.data.idx import write_idx


def test_datasets_lists_location_and_presence(tmp_path, capsys):
    (tmp_path / "kmnist").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        write_idx(tmp_path / "kmnist" / name, np.zeros((1, 28, 28), np.uint8))
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        write_idx(tmp_path / "kmnist" / name, np.zeros(1, np.uint8))
    assert main(["datasets", "--data-root", str(tmp_path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "mnist-mini", "folder", "manifest"} <= set(rows)
    assert rows["kmnist"]["status"] == "present" and rows["kmnist"]["looked_for"] == str(tmp_path / "kmnist")
    assert rows["cifar100"]["status"].startswith("missing") and rows["cifar100"]["classes"] == 100
    assert rows["cifar10"]["size"] == "50,000 train / 10,000 test, 3x32x32"
    assert main(["datasets", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"looked for in: {tmp_path / 'kmnist'}  [present]" in out and "mnist-mini" in out


def test_data_info_reports_class_counts_and_skipped_files(tmp_path, capsys):
    root = make_image_folder(tmp_path / "imgs", classes=("ant", "bee"), per_class=5, size=6)
    make_image_folder(root, classes=("ant",), per_class=9, size=6)  # ant: 9, bee: 5
    (root / "bee" / "bad.jpg").write_text("not an image")
    assert main(["data-info", "--data", str(root), "--image-size", "6", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    total = {c: sum(m["class_counts"][s][c] for s in m["class_counts"]) for c in ("ant", "bee")}
    assert total == {"ant": 9, "bee": 5} and m["split_sizes"]["val"] == 1 + 1
    assert [s["path"].rsplit("/", 1)[1] for s in m["skipped"]] == ["bad.jpg"]
    assert m["train_imbalance_ratio"] == 2.0  # 8 ants / 4 bees after the held-out val images
    assert main(["data-info", "--data", str(root), "--image-size", "6"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable files" in out and "ant" in out and "train imbalance" in out
