"""Tasks: what differs between kinds of model (the loss, what counts as right, how a run names
itself) behind one small protocol (`tasks/base.py`). Classification, multi-label and segmentation (tasks/segment/)."""

from cnnkit.data.types import Dataset, Split
from cnnkit.tasks.base import Task
from cnnkit.tasks.classify import CLASSIFICATION, MULTI_LABEL, task_for
from cnnkit.tasks.segment.task import SEGMENTATION


def task_of(data: Split | Dataset) -> Task:
    """The task of a split or dataset from its labels: masks (N, H, W) -> segmentation, else `task_for`."""
    return SEGMENTATION if data.masks else task_for(data.multi_label)


__all__ = ["CLASSIFICATION", "MULTI_LABEL", "SEGMENTATION", "Task", "task_for", "task_of"]
