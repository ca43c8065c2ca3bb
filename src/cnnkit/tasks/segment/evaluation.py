"""What `cnnkit evaluate` and report code below the tasks use of segmentation, named in
cnnkit.evaluate.api.TASK_MODULES: the metrics of a split, the best / worst sample sheet, the
text table, and the split's class scores with flip or d4 TTA (TTA_MODES)."""

from cnnkit.tasks.segment.final import write_samples
from cnnkit.tasks.segment.metrics import format_metrics, segment_metrics
from cnnkit.tasks.segment.scoring import predict_log_probs
from cnnkit.tasks.segment.tiling import TTA_MODES

__all__ = ["TTA_MODES", "format_metrics", "predict_log_probs", "segment_metrics", "write_samples"]
