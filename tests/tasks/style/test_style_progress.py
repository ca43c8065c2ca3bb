import io

from cnnkit.tasks.style.optimise import Losses
from cnnkit.tasks.style.progress import StyleProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_k_steps_and_the_last_one():
    out = io.StringIO()
    with StyleProgress(5, stream=out, every=2) as p:
        for step in range(1, 6):
            p.update(step, Losses(content=1.5, style=0.25, tv=0.01, total=2.0))
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["step 1/5", "step 2/5", "step 4/5", "step 5/5"]
    assert "content 1.5  style 0.25  tv 0.01  total 2" in lines[-1]


def test_a_terminal_gets_the_live_bar_with_the_losses():
    out = Terminal()
    with StyleProgress(3, stream=out) as p:
        p.update(3, Losses(content=0.5, style=0.125, tv=0.0, total=1.0))
    text = out.getvalue()
    assert "stylize" in text and "3/3" in text and "style 0.125" in text
