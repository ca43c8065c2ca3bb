import json

import pytest
import torch
from PIL import Image

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset
from cnnkit.data.manifest import read_manifest
from cnnkit.errors import DataError


def _img(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 6), (value, value, value)).save(path)


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "project"
    for i in range(8):
        _img(root / "imgs" / f"{i}.png", 10 * i)
    return root


def test_csv_with_split_column_and_relative_paths(photos):
    rows = ["path,label,split"] + [
        f"imgs/{i}.png,{'cat' if i % 2 else 'dog'},{['train', 'train', 'train', 'train', 'valid', 'val', 'test', 'test'][i]}"
        for i in range(8)
    ]
    (photos / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = build_dataset(DataConfig(dataset="manifest", path=str(photos / "labels.csv"), image_size=4))
    assert ds.class_names == ["cat", "dog"] and not ds.multi_label
    assert (len(ds.train), len(ds.val), len(ds.test)) == (4, 2, 2)
    assert ds.test.labels.tolist() == [1, 0]  # 6.png dog, 7.png cat
    assert ds.test.images[0, 0, 0, 0] == 60 and ds.test.paths[1].endswith("imgs/7.png")


def test_folder_dataset_accepts_a_manifest_file_and_splits_it(photos):
    rows = ["path,label"] + [f"imgs/{i}.png,{'a' if i < 4 else 'b'}" for i in range(8)]
    (photos / "m.csv").write_text("\n".join(rows))
    ds = build_dataset(
        DataConfig(dataset="folder", path=str(photos / "m.csv"), image_size=4, val_fraction=0.25), seed=1
    )
    assert len(ds.train) == 6 and ds.val.class_counts(2) == [1, 1] and ds.test is None


def test_multi_label_rows_become_multi_hot(photos):
    labels = ["cat;dog", "dog", "cat", "cat; bird", "bird", "dog;bird", "cat", ""]
    rows = ["path,label"] + [f"imgs/{i}.png,{lab}" for i, lab in enumerate(labels)]
    (photos / "tags.csv").write_text("\n".join(rows))
    ds = build_dataset(
        DataConfig(
            dataset="manifest", path=str(photos / "tags.csv"), image_size=4, label_delimiter=";", val_fraction=0.25
        ),
        seed=0,
    )
    assert ds.multi_label and ds.class_names == ["bird", "cat", "dog"]
    all_labels = torch.cat([ds.train.labels, ds.val.labels])
    all_paths = ds.train.paths + ds.val.paths
    row = all_labels[[p.endswith("/0.png") for p in all_paths].index(True)]
    assert row.tolist() == [0.0, 1.0, 1.0] and all_labels.dtype == torch.float32
    assert all_labels.sum(0).tolist() == [3.0, 4.0, 3.0]
    assert [sum(x) for x in zip(ds.train.class_counts(3), ds.val.class_counts(3))] == [3, 4, 3]


def test_json_and_jsonl_manifests(photos):
    items = [
        {"path": f"imgs/{i}.png", "label": ["x", "y"] if i == 0 else "x", "split": "train" if i < 6 else "val"}
        for i in range(8)
    ]
    (photos / "m.json").write_text(json.dumps({"images": items}))
    ds = build_dataset(DataConfig(dataset="manifest", path=str(photos / "m.json"), image_size=4))
    assert ds.multi_label and ds.train.labels[0].tolist() == [1.0, 1.0] and len(ds.val) == 2
    (photos / "m.jsonl").write_text(
        "\n".join(json.dumps({"path": str(photos / f"imgs/{i}.png"), "label": str(i % 2)}) for i in range(8))
    )
    ds = build_dataset(DataConfig(dataset="manifest", path=str(photos / "m.jsonl"), image_size=4, val_fraction=0.5))
    assert ds.class_names == ["0", "1"] and len(ds.val) == 4 and not ds.multi_label


def test_missing_image_is_skipped_and_reported(photos):
    (photos / "m.csv").write_text(
        "path,label\n" + "\n".join(f"imgs/{i}.png,{i % 2}" for i in range(8)) + "\nimgs/gone.png,0\n"
    )
    ds = build_dataset(DataConfig(dataset="manifest", path=str(photos / "m.csv"), image_size=4))
    assert [s.path.rsplit("/", 1)[1] for s in ds.skipped] == ["gone.png"] and "not found" in ds.skipped[0].reason
    assert len(ds.train) + len(ds.val) == 8


@pytest.mark.parametrize(
    "text, message",
    [
        ("file,class\na.png,x\n", "header naming the columns path,label"),
        ("path,label\n,x\n", "row 2 has no path"),
        ("path,label\nimgs/0.png,\n", r"row 2 \(imgs/0.png\) has no label"),
        ("path,label,split\nimgs/0.png,x,holdout\n", "split 'holdout' is not train, val or test"),
        ("path,label\nimgs/0.png,a;b\n", None),
    ],
)
def test_bad_manifests_name_the_problem(photos, text, message):
    (photos / "bad.csv").write_text(text)
    if message is None:  # without a delimiter, "a;b" is one class name
        assert read_manifest(photos / "bad.csv")[0][1] == ["a;b"]
        return
    with pytest.raises(DataError, match=message):
        read_manifest(photos / "bad.csv")


def test_mixed_split_rows_are_an_error(photos):
    (photos / "m.csv").write_text("path,label,split\nimgs/0.png,a,train\nimgs/1.png,a,\n")
    with pytest.raises(DataError, match="some rows name a split and some do not"):
        build_dataset(DataConfig(dataset="manifest", path=str(photos / "m.csv"), image_size=4))


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, r"missing.csv: manifest not found"),
        ("latin.csv", b"path,label\nimgs/0.png,caf\xe9\n", r"latin.csv: cannot be read \(.*utf-8"),
        ("obj.json", b'{"rows": []}', r"obj.json: expected a JSON list of \{'path': ..., 'label': ...\} objects"),
        ("broken.json", b'[{"path": "imgs/0.png",', r"broken.json: not valid JSON"),
        ("broken.jsonl", b'{"path": "imgs/0.png", "label": "a"}\n{nope}\n', r"broken.jsonl: not valid JSON"),
        ("labels.txt", b"imgs/0.png a\n", r"labels.txt: unknown manifest type '.txt'; use .csv, .json, .jsonl"),
        ("empty.csv", b"path,label\n", r"empty.csv: the manifest lists no images"),
        ("item.json", b'[{"path": "imgs/0.png", "label": "a"}, {"label": "b"}]', r"item.json: item 2 has no path"),
    ],
)
def test_unreadable_manifests_name_the_file_and_the_problem(photos, name, content, message):
    if content is not None:
        (photos / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_manifest(photos / name)


def test_multi_label_row_without_labels_is_an_all_zero_target(photos):
    (photos / "m.jsonl").write_text(
        '{"path": "imgs/0.png", "label": "cat;dog"}\n{"path": "imgs/1.png"}\n{"path": "imgs/2.png", "label": "dog"}\n'
    )
    assert read_manifest(photos / "m.jsonl", ";") == [
        ("imgs/0.png", ["cat", "dog"], None),
        ("imgs/1.png", [], None),
        ("imgs/2.png", ["dog"], None),
    ]
    cfg = DataConfig(
        dataset="manifest", path=str(photos / "m.jsonl"), image_size=4, label_delimiter=";", val_fraction=0.34
    )
    ds = build_dataset(cfg, seed=0)
    labels = torch.cat([ds.train.labels, ds.val.labels])
    assert ds.class_names == ["cat", "dog"] and labels.shape == (3, 2)
    assert sorted(labels.sum(1).tolist()) == [0.0, 1.0, 2.0]


def test_manifest_dataset_errors(photos):
    with pytest.raises(DataError, match=r"dataset 'manifest' needs a file: --data FILE.csv"):
        build_dataset(DataConfig(dataset="manifest", image_size=4))
    (photos / "nt.csv").write_text("path,label,split\nimgs/0.png,a,val\nimgs/1.png,b,test\n")
    with pytest.raises(DataError, match=r"nt.csv: no row is in the train split"):
        build_dataset(DataConfig(dataset="manifest", path=str(photos / "nt.csv"), image_size=4))
    (photos / "gone.csv").write_text(
        "path,label,split\nimgs/missing1.png,a,train\nimgs/missing2.png,b,train\nimgs/0.png,a,val\n"
    )
    with pytest.raises(DataError, match=r"gone.csv: no readable training image"):
        build_dataset(DataConfig(dataset="manifest", path=str(photos / "gone.csv"), image_size=4))
