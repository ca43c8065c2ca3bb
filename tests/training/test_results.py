"""training/results.py: the numbers summary.json takes from a final evaluation, and skipped.csv.
(The files of a whole run are checked in test_trainer.py, test_multilabel.py and test_run_files.py.)"""

import csv
import io

from cnnkit.data.types import SkippedFile
from cnnkit.training.results import headline, skipped_csv


def test_headline_of_a_single_label_evaluation_keeps_the_scalars_only():
    final = {
        "accuracy": 0.9,
        "loss": 0.3,
        "top5_accuracy": 1.0,
        "num_samples": 10,
        "confusion_matrix": [[1]],
        "per_class": {},
    }
    assert headline(final) == {"accuracy": 0.9, "loss": 0.3, "top5_accuracy": 1.0, "num_samples": 10}
    assert headline({"accuracy": 0.5, "loss": 1.0, "num_samples": 4}) == {
        "accuracy": 0.5,
        "loss": 1.0,
        "num_samples": 4,
    }  # fewer than 5 classes: no top-5


def test_headline_of_a_multi_label_evaluation_reports_exact_match_as_accuracy():
    final = {
        "task": "multilabel",
        "mean_ap": 0.8,
        "exact_match": 0.6,
        "loss": 0.2,
        "num_samples": 5,
        "macro": {"f1": 0.7, "precision": 0.9},
    }
    assert headline(final) == {
        "accuracy": 0.6,
        "mean_ap": 0.8,
        "exact_match": 0.6,
        "loss": 0.2,
        "num_samples": 5,
        "macro_f1": 0.7,
    }


def test_skipped_csv_quotes_paths_with_commas_and_keeps_every_row():
    rows = [SkippedFile("a/b.jpg", "truncated"), SkippedFile("c, d/e.png", 'not an image: "x"')]
    parsed = list(csv.reader(io.StringIO(skipped_csv(rows))))
    assert parsed == [["path", "reason"], ["a/b.jpg", "truncated"], ["c, d/e.png", 'not an image: "x"']]
