"""Text for a terminal: a file name with a newline or other control character is shown escaped
(`a\\nb.png`), so it cannot break a table row or forge a line of output."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every non-printable character written as a Python escape (\\n, \\t, \\x1b, ...)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
