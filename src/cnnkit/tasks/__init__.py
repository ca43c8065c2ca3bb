"""Tasks: what differs between kinds of model (the loss, what counts as right, how a run names
itself) behind one small protocol (`tasks/base.py`). Classification and multi-label are the first two."""

from cnnkit.tasks.base import Task
from cnnkit.tasks.classify import CLASSIFICATION, MULTI_LABEL, task_for

__all__ = ["CLASSIFICATION", "MULTI_LABEL", "Task", "task_for"]
