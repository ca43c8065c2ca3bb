"""The promise of `cnnkit train` with no arguments: >= 98 % test accuracy on mnist-mini.

The accuracy is checked here (slow: about 35 s on 2 CPU cores); the time budget (<= 60 s of
training) is measured by benchmarks/bench_train.py, not asserted in a test.
"""

import pytest

from cnnkit.config import Config
from cnnkit.training.trainer import train


@pytest.mark.slow
def test_default_recipe_reaches_98_percent(tmp_path):
    run = train(Config().with_overrides({"run.runs_dir": str(tmp_path)}), quiet=True)
    assert run.summary["test"]["accuracy"] >= 0.98
    assert run.summary["test"]["num_samples"] == 2000
