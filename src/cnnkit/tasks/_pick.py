"""Which task a split or dataset is, from its labels (cnnkit.tasks.task_of)."""

from __future__ import annotations

from cnnkit.data.types import Dataset, Split
from cnnkit.tasks.base import Task
from cnnkit.tasks.classify import task_for
from cnnkit.tasks.segment.task import SEGMENTATION


def task_of(data: Split | Dataset) -> Task:
    """The task of a split or dataset from its labels: masks (N, H, W) -> segmentation, else `task_for`."""
    return SEGMENTATION if data.masks else task_for(data.multi_label)
