"""training/state.py: the train_state layout round-trips, version-1 files (no "version" key) still load, newer ones are refused."""

import re

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


# --- restore(): a last.ckpt whose training state does not fit this run is a CheckpointError naming the file ----


def _ckpt(state, model):
    return {"state_dict": model.state_dict(), "train_state": state.state_dict()}


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda c: c["train_state"].pop("optimizer"), r"KeyError: 'optimizer'"),
        (
            lambda c: c["train_state"]["optimizer"]["param_groups"].append({"params": [9]}),
            r"ValueError: .*parameter group",
        ),
        (lambda c: c["state_dict"].update(weight=torch.zeros(3, 3)), r"RuntimeError: .*size mismatch for weight"),
    ],
)
def test_restore_names_the_file_when_the_state_does_not_fit(tmp_path, edit, problem):
    from cnnkit.training.state import restore

    torch.manual_seed(0)
    source = _state()
    model = torch.nn.Linear(2, 2)
    ckpt = _ckpt(source, model)
    edit(ckpt)
    with pytest.raises(CheckpointError) as info:
        restore(_state(), torch.nn.Linear(2, 2), ckpt, tmp_path / "last.ckpt", rank=0, world_size=1)
    assert str(info.value).startswith(f"{tmp_path / 'last.ckpt'}: its training state does not fit this run's config (")
    assert re.search(problem, str(info.value), re.DOTALL), str(info.value)


def test_restore_round_trips_the_optional_parts():
    """EMA, lookahead, a time budget and an fp16 scaler: each restored when the run has it."""
    from cnnkit.training.state import restore

    class Part:  # the state_dict protocol every optional part follows
        def __init__(self, value=0):
            self.value, self.total = value, None

        def state_dict(self):
            return {"value": self.value}

        def load_state_dict(self, st):
            self.value = st["value"]

    class Budget(Part):
        def __init__(self, value=0):
            super().__init__(value)
            self.total = 42  # its plan's total steps

    a = _state()
    a.ema, a.lookahead, a.budget = Part(1), Part(2), Budget(3)
    st = a.state_dict()
    st["scaler"] = {
        "scale": 1024.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 5,
        "_growth_tracker": 1,
    }
    b = _state()
    b.ema, b.lookahead, b.budget = Part(), Part(), Budget()
    b.scaler = torch.amp.GradScaler("cpu", enabled=True)
    model = torch.nn.Linear(2, 2)
    restore(b, model, {"state_dict": model.state_dict(), "train_state": st}, "last.ckpt", rank=0, world_size=1)
    assert (b.ema.value, b.lookahead.value, b.budget.value) == (1, 2, 3)
    assert b.lookahead.total == 42  # the lookahead follows the resumed budget's plan
    assert b.scaler.get_scale() == 1024.0
