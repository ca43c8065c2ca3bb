"""Trials whose process died without a word (SIGKILL, the machine lost) are failed and run again.

A trial killed by SIGKILL cannot tell the database; it would stay RUNNING forever, and its
parameters would never be tried. Optuna's heartbeat (RDB storage) solves it: while a trial
runs, a thread records a heartbeat every `interval` seconds; a RUNNING trial whose last beat
is older than `grace` seconds is stale. `fail_stale` marks the stale trials FAIL (at every
tune start, and Optuna checks again before each new trial) and enqueues each one's
parameters once more (Optuna's RetryHeartbeatStaleTrialCallback, one retry: a configuration that
kills its process twice is not tried a third time). A trial interrupted by Ctrl-C is failed
by its own process and not retried: that was the user's choice.
"""

from __future__ import annotations

import warnings
from typing import Any, TextIO

HEARTBEAT_S = 20  # seconds between a running trial's heartbeats
GRACE_S = 60  # a RUNNING trial silent this long is stale (several missed beats: a slow disk is not a death)


class RetryStale:
    """Optuna's heartbeat_stale_trial_callback: enqueue the trial's parameters again (once), and say so."""

    def __init__(self, stream: TextIO | None):
        import optuna

        self.stream = stream
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)

    def __call__(self, study: Any, trial: Any) -> None:
        retried = len(trial.system_attrs.get("retry_history", [])) < 1
        self.retry(study, trial)
        if self.stream is not None:
            what = "its parameters are queued again" if retried else "already retried once: not queued again"
            print(
                f"trial {trial.number}: its process stopped without a word (killed?); marked failed, {what}",
                file=self.stream,
                flush=True,
            )


def heartbeat_kwargs(interval: int, grace: int, stream: TextIO | None) -> dict[str, Any]:
    """RDBStorage keywords for the heartbeat."""
    if not 0 < interval < grace:
        raise ValueError(f"the heartbeat needs 0 < interval < grace, got {interval}, {grace}")
    return {"heartbeat_interval": interval, "grace_period": grace, "heartbeat_stale_trial_callback": RetryStale(stream)}


def fail_stale(study: Any) -> list[int]:
    """Fail the study's stale RUNNING trials now (their parameters re-enqueued); their numbers."""
    import optuna

    before = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))}
    return sorted(before - after)
