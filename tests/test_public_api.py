"""What a new user sees first: dir(cnnkit), `cnnkit models`' default mark, the package description."""

import re
from pathlib import Path

import cnnkit
from cnnkit.cli import build_parser


def test_dir_lists_the_public_api_and_every_name_resolves():
    assert dir(cnnkit) == sorted(cnnkit.__all__)
    assert {"train", "load", "Config", "Classifier", "samples_dir", "evaluate_checkpoint"} <= set(dir(cnnkit))
    for name in cnnkit.__all__:
        assert getattr(cnnkit, name) is not None


def test_models_marks_the_real_default(monkeypatch):
    from cnnkit.models import zoo
    from cnnkit.models.auto import PHOTO_MODEL, photo_weights_available
    from cnnkit.training.trainer import auto_model

    defaults = {auto_model(1, 28), auto_model(3, 32), auto_model(3, 224)} | (
        {PHOTO_MODEL} if photo_weights_available() else set()
    )
    names = sorted(
        defaults | {"simple_cnn", "lenet5"}
    )  # the real table measures every model (seconds): its rows, faked
    monkeypatch.setattr(
        zoo,
        "zoo_rows",
        lambda: [
            {"name": n, "params": 1, "macs": 1, "input": "1x28x28", "pretrained": False, "description": "d"}
            for n in names
        ],
    )
    table = zoo.zoo_table()
    marked = re.findall(r"^(\S+) \*", table, flags=re.M)
    assert sorted(marked) == sorted(defaults)
    assert f"grayscale up to 64 px (digits): {auto_model(1, 28)}" in table and "(default)" not in table


def test_models_names_the_photo_default_where_its_weights_are(monkeypatch):
    from cnnkit.models import auto, zoo

    monkeypatch.setattr(auto, "photo_weights_available", lambda: True)
    assert zoo.auto_defaults()[zoo.PHOTO_CASE] == "efficientnet_lite0"
    assert zoo.auto_defaults()["other larger images"] == "resnet18"
    monkeypatch.setattr(auto, "photo_weights_available", lambda: False)
    assert zoo.PHOTO_CASE not in zoo.auto_defaults() and zoo.auto_defaults()["larger images"] == "resnet18"


def test_the_description_promises_only_existing_verbs():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    description = re.search(r'^description = "(.*)"', text, flags=re.M).group(1)
    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    for word in ("train", "evaluate", "predict", "explain", "export", "serve"):
        if word in description:
            assert word in verbs, f"the description promises {word!r}, which is not a cnnkit verb"
