"""cnnkit/_argparse.py: unknown flags and verbs name the nearest valid spelling."""

import io

import pytest

from cnnkit.cli import main


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["train", "--learning-rate", "0.1"], "unrecognized arguments: --learning-rate 0.1; did you mean --lr?"),
        (["train", "--epohcs", "3"], "did you mean --epochs?"),
        (["predict", "ck", "x.png", "--formt", "json"], "did you mean --format?"),
        (
            ["predict", "ck", "x.png", "--format", "jsn"],
            "invalid choice: 'jsn' (choose from 'table', 'json', 'csv'); did you mean 'json'?",
        ),
        (["trian"], "did you mean 'train'?"),
        (
            ["train", "--bs", "8", "--num-epochs", "2"],
            "did you mean --batch-size (for --bs), --epochs (for --num-epochs)?",
        ),
    ],
)
def test_unknown_flag_or_verb_suggests_the_nearest(argv, hint, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert hint in err
    assert err.count("\n") <= 6  # a short message, not train's screen-long usage


def test_no_suggestion_when_nothing_is_close(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--zzzzzz"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzz" in err and "did you mean" not in err


def test_a_closed_pipe_ends_quietly_with_141(tiny_run, tmp_path, monkeypatch, capsys):
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "a.png")

    class ClosedPipe(io.StringIO):
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["predict", str(tiny_run), str(tmp_path / "a.png")]) == 141
    assert capsys.readouterr().err == ""
