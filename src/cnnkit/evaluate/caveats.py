"""What a headline number means: the validation split that also chose the epoch is an
optimistic estimate, and label smoothing leaves a model under-confident by design."""

from __future__ import annotations

SELECTION_NOTE = "optimistic: used for model selection"


def selection_note(split: str) -> str | None:
    """The caveat for a number measured on the split that chose the best epoch (None for test)."""
    if split != "val":
        return None
    return (
        f"validation accuracy of the epoch chosen on this same split ({SELECTION_NOTE}); "
        "hold out a test split with --test-fraction (or a test/ folder) for an unbiased number"
    )


def result_text(what: str, best_epoch: int, split: str) -> str:
    """The final result phrase: `what` with the best epoch and, for the validation split, the caveat."""
    if split == "val":
        return f"{what} of best epoch {best_epoch}, chosen on this same split ({SELECTION_NOTE}; --test-fraction holds out a test split)"
    return f"{what} (best epoch {best_epoch})"


def calibration_gap(bins: list[dict]) -> float:
    """Mean accuracy minus mean confidence over the reliability bins, weighted by count:
    positive = under-confident (right more often than it claims), negative = over-confident."""
    total = sum(b["count"] for b in bins)
    if not total:
        return 0.0
    return sum(b["count"] * (b["accuracy"] - b["confidence"]) for b in bins if b["count"]) / total


def calibration_note(final: dict, label_smoothing: float, threshold: float = 0.01) -> str | None:
    """A sentence on the sign of the calibration gap, naming label smoothing when it explains
    under-confidence; None when the gap is under `threshold` (1 point) or there are no bins."""
    bins = final.get("calibration")
    if not bins:
        return None
    gap = calibration_gap(bins)
    if abs(gap) < threshold:
        return None
    if gap > 0:
        why = (
            (
                f" Label smoothing (optim.label_smoothing {label_smoothing:g}) trains towards probabilities below 1, so this is expected; "
                "read the probabilities as a lower bound, or train with --label-smoothing 0 for calibrated ones."
            )
            if label_smoothing > 0
            else ""
        )
        return f"Calibration: the model is under-confident: it is right {100 * gap:.1f} points more often than its mean confidence says.{why}"
    return f"Calibration: the model is over-confident: its mean confidence exceeds its accuracy by {100 * -gap:.1f} points."
