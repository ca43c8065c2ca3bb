"""training/progress.py: a live rich bar on a terminal, plain lines otherwise, messages as written."""

import io

from cnnkit.training.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_the_display_follows_the_stream():
    assert Progress(1, 4, stream=io.StringIO()).interactive is False  # a pipe or a file: plain lines
    assert Progress(1, 4, stream=FakeTTY()).interactive is True  # a terminal: the live bar
    assert Progress(1, 4, stream=FakeTTY(), interactive=False).interactive is False  # --plain


def test_live_bar_draws_a_bar_and_prints_messages_verbatim():
    out = FakeTTY()
    with Progress(1, 4, stream=out) as p:
        p.message("cnnkit: file runs/[a]/x.png and [bold]not markup[/bold]")
        p.start_epoch(1)
        p.step(2, 4, 0.25, 0.5, 128)
    text = out.getvalue()
    assert "runs/[a]/x.png" in text and "[bold]not markup[/bold]" in text
    assert "━" in text and "2/4" in text and "\x1b[" in text  # a drawn bar, with terminal control codes
