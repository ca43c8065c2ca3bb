import os
import signal

import pytest

from cnnkit.training.interrupt import GracefulInterrupt


def test_first_signal_is_noted_and_a_second_ctrl_c_stops_at_once():
    notes = []
    with GracefulInterrupt(notes.append) as interrupt:
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupt.requested and interrupt.exit_code == 143
        os.kill(
            os.getpid(), signal.SIGTERM
        )  # repeated (a scheduler, or a dead launcher's threads): still one graceful stop
        assert interrupt.exit_code == 143
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert notes == [
        "cnnkit: SIGTERM received: finishing this step and saving a checkpoint (Ctrl-C again stops at once)"
    ]
    assert (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )


def test_ctrl_c_twice():
    with GracefulInterrupt(lambda text: None) as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.exit_code == 130
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
