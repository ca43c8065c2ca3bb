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
