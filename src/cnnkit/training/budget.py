"""Train for a fixed time instead of a fixed number of epochs (`train.time_budget`, `--time-budget 10m`),
or for the epochs but no longer than a time (`train.time_limit`, `--time-limit 2m`).

The schedule (the learning-rate curve, lookahead's pull) needs to know where training ends.
With a time budget the end is a number of optimiser steps that is planned from measured
speed and re-planned as the run goes:

- a first plan after the first few steps of the first epoch (their seconds per step);
- a new plan after every epoch, from the seconds per step of that epoch, which count its
  validation and checkpoint too; with progressive resizing each remaining step is counted
  at its size's share of the cost.

The planned steps are what the remaining time holds at that speed; the last epoch may be
partial, and the run ends on the schedule's last step at about the budget. The final
evaluation (test set, TTA, report) comes after the budget. A run with a time budget is
not reproducible step for step (the plan depends on the machine's speed); `summary.json`
records the epochs and steps it ran.

A time limit is the same plan with the epochs' steps as its ceiling (`ceiling=True`): where the
machine is fast enough nothing changes, and on a slow or busy one the schedule is shortened to end
by the limit instead of running past it (training/auto.py sets one for the photo default).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cnnkit.errors import ConfigError

FIRST_PLAN_AFTER = 10  # steps of the first epoch timed for the first plan (after 2 warm-up steps)
WARMUP_STEPS = 2


def parse_duration(text: str | float | int) -> float:
    """Seconds from 600, "600", "600s", "10m", "1.5h" (the --time-budget flag)."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*", str(text).lower())
        if not m:
            raise ConfigError(f"train.time_budget: {text!r} is not a duration; write seconds (600) or 600s, 10m, 1.5h")
        seconds = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds < 0:
        raise ConfigError(f"train.time_budget must be >= 0 seconds (0: off), got {seconds}")
    return seconds


class TimeBudget:
    """The planned number of optimiser steps for a budget of `seconds`.

    `total` starts as `initial_total` (the epochs' steps) until the first plan. `observe`
    is called after each step with the run's step count and elapsed seconds; it plans once
    in the first epoch. `end_epoch` re-plans from the speed of the epoch just ended.
    `work(epoch, epochs)` is a step's cost relative to a full-size one (progressive
    resizing makes early epochs cheaper); the plan counts the remaining steps at their cost.
    With `ceiling`, no plan exceeds `initial_total` (a time limit rather than a budget).
    """

    def __init__(
        self,
        seconds: float,
        steps_per_epoch: int,
        initial_total: int,
        work: Callable[[int, int], float] | None = None,
        *,
        ceiling: bool = False,
    ):
        self.seconds, self.steps_per_epoch = float(seconds), max(int(steps_per_epoch), 1)
        self.total = max(int(initial_total), 1)
        self.ceiling = self.total if ceiling else None
        self.work = work or (lambda epoch, epochs: 1.0)
        self.planned = False
        self._mark: tuple[int, float] | None = None  # (steps, elapsed) where the speed is measured from

    def observe(self, steps_done: int, elapsed: float) -> None:
        """After each optimiser step: the first plan from the first epoch's early steps."""
        if self.planned:
            return
        if steps_done == WARMUP_STEPS:
            self._mark = (steps_done, elapsed)
        elif self._mark is not None and steps_done >= WARMUP_STEPS + min(
            FIRST_PLAN_AFTER, max(self.steps_per_epoch // 4, 1)
        ):
            step0, t0 = self._mark
            self._plan(steps_done, elapsed, (elapsed - t0) / (steps_done - step0) / self._work_of(steps_done))
            self._mark = (0, 0.0)

    def end_epoch(self, steps_done: int, elapsed: float) -> None:
        """After an epoch (its validation and checkpoint included): plan from that epoch's speed."""
        step0, t0 = self._mark if self._mark is not None and self._mark[0] < steps_done else (0, 0.0)
        epoch = -(-steps_done // self.steps_per_epoch)
        if steps_done > step0:
            work = (steps_done - step0) * self.work(epoch, self.epochs)
            self._plan(steps_done, elapsed, (elapsed - t0) / max(work, 1e-9))
        self._mark = (steps_done, elapsed)

    def _work_of(self, step: int) -> float:
        return self.work(-(-step // self.steps_per_epoch), self.epochs)

    def _cost(self, steps_done: int, total: int) -> float:
        """Relative cost of steps steps_done+1 .. total when the run has `total` steps."""
        epochs = -(-total // self.steps_per_epoch)
        cost, step = 0.0, steps_done
        while step < total:
            epoch = step // self.steps_per_epoch + 1
            end = min(epoch * self.steps_per_epoch, total)
            cost += (end - step) * self.work(epoch, epochs)
            step = end
        return cost

    def _plan(self, steps_done: int, elapsed: float, seconds_per_work: float) -> None:
        """The most steps whose remaining cost fits the remaining time (bisection: cost grows with steps)."""
        remaining = (
            max(self.seconds - elapsed, 0.0) / max(seconds_per_work, 1e-9) + 1e-6
        )  # in full-size steps (+1e-6: float noise)
        lo, hi = steps_done, steps_done + 1
        while self._cost(steps_done, hi) <= remaining:
            lo, hi = hi, steps_done + 2 * (hi - steps_done)
            if self.ceiling is not None and lo >= self.ceiling:
                lo = hi = self.ceiling
                break
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self._cost(steps_done, mid) <= remaining else (lo, mid)
        self.total = max(min(lo, self.ceiling) if self.ceiling is not None else lo, 1)
        self.planned = True

    @property
    def epochs(self) -> int:
        """Epochs the plan covers (the last one possibly partial)."""
        return -(-self.total // self.steps_per_epoch)

    def planned_steps(self) -> int:
        """The steps planned now (the schedule reads it at every step: a re-plan moves its end)."""
        return self.total

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimiser steps of 1-based `epoch` under the plan (steps_per_epoch except the last)."""
        return max(0, min(self.steps_per_epoch, self.total - (epoch - 1) * self.steps_per_epoch))

    def state_dict(self) -> dict:
        return {
            "seconds": self.seconds,
            "total": self.total,
            "planned": self.planned,
            "mark": list(self._mark) if self._mark else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.total, self.planned = int(state["total"]), bool(state["planned"])
        self._mark = tuple(state["mark"]) if state.get("mark") else None
