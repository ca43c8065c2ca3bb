"""A step hook that crashes a run at a chosen step: a kill -9 stand-in for resume tests."""

from __future__ import annotations


class Crash(Exception):
    pass


def crash_at(epoch: int, step: int):
    def hook(e: int, s: int, loss: float) -> None:
        if (e, s) == (epoch, step):
            raise Crash(f"injected at epoch {e} step {s}")

    return hook
