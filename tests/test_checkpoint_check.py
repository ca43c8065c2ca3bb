"""Checkpoints validated before anything is built (issue 21, rows 14 and 16): tampered sizes and
refused pickles are clear errors naming the file and the key."""

import os

import pytest
import torch

from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint
from cnnkit.cli import main
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.models.weights import read_state_dict
from cnnkit.safe_pickle import REFUSED


def _tampered(tiny_run, tmp_path, edit) -> str:
    ckpt = torch.load(tiny_run / "best.ckpt", weights_only=True)
    edit(ckpt)
    path = tmp_path / "tampered.ckpt"
    torch.save(ckpt, path)
    return str(path)


def test_huge_num_classes_is_refused_naming_file_and_key(tiny_run, tmp_path, capsys):
    path = _tampered(tiny_run, tmp_path, lambda c: c["model"]["kwargs"].update(num_classes=10**12))
    assert main(["evaluate", path, "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: model.kwargs.num_classes is 1e+12, outside the sane range 1..100,000" in err
    assert "Traceback" not in err and "MemoryError" not in err


def test_huge_input_size_is_refused(tiny_run, tmp_path, capsys):
    path = _tampered(tiny_run, tmp_path, lambda c: c["input"].update(size=[10**6, 10**6]))
    assert main(["predict", path, str(tmp_path)]) == 2
    assert f"{path}: input.size is 1e+06, outside the sane range 1..4,096" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["model"]["kwargs"].update(num_classes=11),
            "model.kwargs.num_classes is 11 but class_names lists 10 classes",
        ),
        (lambda c: c["model"]["kwargs"].update(in_chans=3), "input.channels is 1 but model.kwargs.in_chans is 3"),
        (lambda c: c["model"]["kwargs"].update(widht=4), "model.kwargs.widht is not an argument of simple_cnn"),
        (lambda c: c["model"].update(name="resnet9000"), "model.name 'resnet9000' is not a model this cnnkit knows"),
        (lambda c: c["input"].update(std=[0.0]), "input.std holds 0.0, not a finite positive number"),
        (lambda c: c["input"].update(interpolation="cubic"), "input.interpolation is 'cubic'; expected one of"),
        (lambda c: c["model"]["kwargs"].update(width=5000), "model.kwargs describe a model whose"),
    ],
)
def test_inconsistent_description_is_a_checkpoint_error(tiny_run, tmp_path, edit, message):
    path = _tampered(tiny_run, tmp_path, edit)
    with pytest.raises(CheckpointError, match="tampered.ckpt: ") as info:
        load_checkpoint(path)
    assert message in str(info.value)


def test_a_real_checkpoint_still_loads_and_builds(tiny_run):
    model = model_from_checkpoint(load_checkpoint(tiny_run / "best.ckpt"))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_refused_pickle_says_why_without_torchs_advice(tmp_path, capsys):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "cnnkit.checkpoint/1", "payload": Evil()}, path)
    assert main(["evaluate", str(path), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {REFUSED} (it refers to " in err
    assert "weights_only" not in err and "truncated" not in err and "corrupt" not in err
    with pytest.raises(ConfigError) as info:  # --weights reads pickles the same way
        read_state_dict(tmp_path / "evil.ckpt")
    assert REFUSED in str(info.value) and "weights_only" not in str(info.value)


# --- every refusal of validate() / check_shapes(), on a tiny in-memory checkpoint (no training) -----------


def _ckpt() -> dict:
    from cnnkit.checkpoint import make_checkpoint
    from cnnkit.models import create_model

    model = create_model("simple_cnn", num_classes=2, in_chans=1, width=4, stages=1, depth=1)
    return make_checkpoint(
        model,
        class_names=["a", "b"],
        channels=1,
        size=(8, 8),
        mean=[0.5],
        std=[0.25],
        config={},
        dataset="tiny",
        epoch=1,
        metrics={},
    )


def _kwargs(**kw):
    return lambda c: c["model"]["kwargs"].update(kw)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(model="simple_cnn"), "model must hold a name (text) and kwargs (a mapping)"),
        (lambda c: c["model"].update(name=7), "model must hold a name (text) and kwargs (a mapping)"),
        (lambda c: c["model"].update(kwargs=[1]), "model must hold a name (text) and kwargs (a mapping)"),
        (lambda c: c.update(class_names="a,b"), "class_names must be a list of names"),
        (lambda c: c.update(class_names=["a", 2]), "class_names must be a list of names"),
        (_kwargs(num_classes="2"), "model.kwargs.num_classes must be an integer, got str 2"),
        (_kwargs(num_classes=True), "model.kwargs.num_classes must be an integer, got bool True"),
        (_kwargs(in_chans=0), "model.kwargs.in_chans is 0, outside the sane range 1..64"),
        (lambda c: c.update(input=[1, 8, 8]), "input must be a mapping (channels, size, mean, std)"),
        (lambda c: c["input"].update(size=[8]), "input.size must be [height, width], got [8]"),
        (lambda c: c["input"].update(size="8x8"), "input.size must be [height, width], got 8x8"),
        (lambda c: c["input"].update(size=[8, 0]), "input.size is 0, outside the sane range 1..4,096"),
        (lambda c: c["input"].update(mean=[0.5, 0.5]), "input.mean must be a list of 1 numbers (one per channel)"),
        (lambda c: c["input"].update(mean=[float("nan")]), "input.mean holds nan, not a finite number"),
        (lambda c: c["input"].update(std=[True]), "input.std holds True, not a finite positive number"),
        (lambda c: c["model"]["kwargs"].update({3: 1}), "model.kwargs has a non-text key 3"),
        (_kwargs(image_size=10**5), "model.kwargs.image_size is 100000, outside the sane range 1..4,096"),
        (_kwargs(width=10**7), "model.kwargs.width is 1e+07, outside the sane range -1000000..1,000,000"),
        (_kwargs(dropout=float("inf")), "model.kwargs.dropout is inf, not a finite number"),
    ],
)
def test_validate_names_the_file_and_the_key(edit, message):
    from cnnkit.checkpoint_check import validate

    ckpt = _ckpt()
    edit(ckpt)
    with pytest.raises(CheckpointError) as info:
        validate(ckpt, "dir/x.ckpt")
    assert str(info.value).startswith(f"dir/x.ckpt: {message}"), str(info.value)
    assert str(info.value).endswith("the file is not a usable cnnkit checkpoint (tampered, or from another tool)")


def test_check_shapes_refuses_weights_that_are_not_a_mapping_and_a_bad_pruning_entry():
    from cnnkit.checkpoint_check import check_shapes

    ckpt = _ckpt()
    check_shapes(ckpt, "x.ckpt")  # the untouched checkpoint passes
    with pytest.raises(CheckpointError, match=r"^x.ckpt: state_dict must be a mapping of names to tensors; "):
        check_shapes({**ckpt, "state_dict": [torch.zeros(1)]}, "x.ckpt")
    with pytest.raises(CheckpointError, match=r"^x.ckpt: pruning must be a mapping \(structure, method, parent...\)$"):
        check_shapes({**ckpt, "pruning": "half"}, "x.ckpt")


def test_a_model_the_meta_device_cannot_build_is_left_to_the_real_build_which_names_it():
    from cnnkit.checkpoint_check import check_shapes, validate

    ckpt = _ckpt()
    ckpt["model"]["kwargs"]["width"] = -3  # an integer validate() accepts (negative arguments exist), no model has it
    validate(ckpt, "x.ckpt")
    assert check_shapes(ckpt, "x.ckpt") is None  # the meta build failed: nothing to compare shapes with
    with pytest.raises(CheckpointError, match=r"^checkpoint model simple_cnn cannot be built from its model.kwargs \("):
        model_from_checkpoint(ckpt)  # before: a RuntimeError traceback from torch
