import shutil

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread avoids OpenMP's waiting on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the session's tiny mnist-mini run (the deploy verbs write into its export/)."""
    dst = tmp_path / "tiny"
    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("export"))
    return dst


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory):
    """The tiny run exported once (torchscript exporter: fast), for the tests that only read it."""
    from cnnkit.deploy.export import export_checkpoint

    return export_checkpoint(
        tiny_run, out=tmp_path_factory.mktemp("onnx") / "model.onnx", exporter="torchscript", images=16
    ).path
