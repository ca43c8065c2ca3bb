"""_text.py: file names with control characters are shown escaped (one table row each)."""

from cnnkit._text import printable
from cnnkit.cli import main


def test_printable_escapes_only_control_characters():
    assert printable("plain name.png") == "plain name.png"
    assert printable("a\nb\tc\x1b[31m.png") == "a\\nb\\tc\\x1b[31m.png"
    assert printable("café.png") == "café.png"


def test_table_escapes_control_characters_in_file_names(tiny_run, tmp_path, capsys):
    from PIL import Image

    odd = tmp_path / "two\nlines.png"
    Image.new("L", (28, 28)).save(odd)
    assert main(["predict", str(tiny_run), str(odd)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 and "two\\nlines.png" in rows[1]  # one row, the newline shown as \n


def test_printable_escapes_control_characters():
    assert printable("a\nb\tc\x1b[31md\u2028") == "a\\nb\\tc\\x1b[31md\\u2028" and printable("é 猫.png") == "é 猫.png"
