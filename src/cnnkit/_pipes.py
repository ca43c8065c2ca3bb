"""A closed pipe on stdout (`cnnkit predict ... | head`) ends the command quietly."""

from __future__ import annotations

import os
import sys

SIGPIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away


def quiet_stdout() -> int:
    """Point stdout at /dev/null, so Python's flush at exit raises no second BrokenPipeError
    (the recipe in the `signal` module's docs), and return the exit code 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (an in-process caller's buffer)
        pass
    return SIGPIPE_EXIT
