"""Tasks: what differs between kinds of model (the loss, what counts as right, how a run names
itself) behind one small protocol (`tasks/base.py`). Classification, multi-label, segmentation
(tasks/segment/) and DCGAN generation (tasks/gan/, its own loop). Names load on first use, so that a
task's commands.py (the CLI's parser) imports no torch."""

from typing import TYPE_CHECKING

from cnnkit._lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from cnnkit.tasks._pick import task_of as task_of
    from cnnkit.tasks.base import Task as Task
    from cnnkit.tasks.classify import CLASSIFICATION as CLASSIFICATION
    from cnnkit.tasks.classify import MULTI_LABEL as MULTI_LABEL
    from cnnkit.tasks.classify import task_for as task_for
    from cnnkit.tasks.segment.task import SEGMENTATION as SEGMENTATION

_NAMES = {
    "CLASSIFICATION": "cnnkit.tasks.classify",
    "MULTI_LABEL": "cnnkit.tasks.classify",
    "SEGMENTATION": "cnnkit.tasks.segment.task",
    "Task": "cnnkit.tasks.base",
    "task_for": "cnnkit.tasks.classify",
    "task_of": "cnnkit.tasks._pick",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
