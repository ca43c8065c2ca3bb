"""training/state.py: the train_state layout round-trips, version-1 files (no "version" key) still load, newer ones are refused."""

import pytest
import torch

from cnnkit.errors import CheckpointError
from cnnkit.training.early_stopping import EarlyStopping
from cnnkit.training.loop import EpochState
from cnnkit.training.state import TRAIN_STATE_VERSION, TrainState


def _state(seed=0):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return TrainState(
        optimizer=opt,
        scheduler=torch.optim.lr_scheduler.StepLR(opt, 1),
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        stopper=EarlyStopping("val_loss", 0, 0.0),
        generator=torch.Generator().manual_seed(seed),
    )


def test_round_trip_and_version_1():
    a = _state()
    a.rows, a.epoch, a.skipped_steps, a.train_seconds, a.epoch_lr = [{"epoch": 1, "val_loss": 0.5}], 1, 2, 3.5, 0.1
    a.epoch_state = EpochState.start(6, a.generator)
    a.epoch_state.step = 2
    st = a.state_dict()
    expected_next = torch.randperm(6, generator=torch.Generator().set_state(st["rng"]["generator"]))
    assert st["version"] == TRAIN_STATE_VERSION == 2 and st["finished"] is False and st["epoch_sums"] is None
    for d in (
        st,
        {k: v for k, v in st.items() if k != "version"},
    ):  # version 2, and a file written before the key existed
        b = _state(seed=123)
        b.load_state_dict(d)
        assert (b.rows, b.epoch, b.skipped_steps, b.train_seconds, b.epoch_lr) == (a.rows, 1, 2, 3.5, 0.1)
        assert b.epoch_state.step == 2 and torch.equal(b.epoch_state.order, a.epoch_state.order)
        assert torch.equal(
            torch.randperm(6, generator=b.generator), expected_next
        )  # the data generator continues where it was


def test_a_newer_version_is_refused():
    st = _state().state_dict()
    with pytest.raises(CheckpointError, match="version 3 is newer"):
        _state().load_state_dict({**st, "version": 3})
