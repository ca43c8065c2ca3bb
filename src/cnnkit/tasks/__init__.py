"""Tasks: what differs between kinds of model (the loss, what counts as right, how a run names
itself) behind one small protocol (`tasks/base.py`). Classification, multi-label and segmentation (tasks/segment/)."""

from cnnkit.data.types import Split
from cnnkit.tasks.base import Task
from cnnkit.tasks.classify import CLASSIFICATION, MULTI_LABEL, task_for
from cnnkit.tasks.segment.task import SEGMENTATION


def task_of(split: Split) -> Task:
    """The task of a split from its labels: masks (N, H, W) -> segmentation, else `task_for`."""
    return SEGMENTATION if split.labels.ndim == 3 else task_for(split.multi_label)


__all__ = ["CLASSIFICATION", "MULTI_LABEL", "SEGMENTATION", "Task", "task_for", "task_of"]
