"""ServedModel: the deploy backends give the eager model's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.errors import ConfigError
from cnnkit.inference import load
from cnnkit.serve.model import ServedModel


def test_channels_last_backend_matches_eager(tiny_run, served):
    x = np.random.default_rng(0).integers(0, 256, (5, served.clf.channels, *served.clf.size), dtype=np.uint8)
    cl = ServedModel(load(tiny_run), tiny_run, backend="channels-last")
    got, want = cl.forward(x), served.forward(x)
    assert got.shape == want.shape == (5, len(served.class_names)) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert cl.card()["backend"] == "channels-last"


def test_a_backend_without_a_torch_model_is_a_config_error(served):
    class NotTorch:
        model = None

    with pytest.raises(ConfigError, match="--backend bf16 needs a PyTorch model"):
        ServedModel(NotTorch(), None, backend="bf16")  # type: ignore[arg-type]
