"""What `cnnkit evaluate` and report code below the tasks use of segmentation, named in
cnnkit.evaluate.api.TASK_MODULES: the metrics of a split, the best / worst sample sheet and the
text table."""

from cnnkit.tasks.segment.final import write_samples
from cnnkit.tasks.segment.metrics import format_metrics, segment_metrics

__all__ = ["format_metrics", "segment_metrics", "write_samples"]
