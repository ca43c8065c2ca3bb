import pytest

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training.early_stopping import EarlyStopping


def test_stops_after_patience_epochs_without_improvement():
    es = EarlyStopping("val_accuracy", patience=2)
    decisions = []
    for epoch, acc in enumerate([0.5, 0.6, 0.6, 0.55], 1):
        es.update(acc, epoch)
        decisions.append(es.should_stop)
    assert decisions == [False, False, False, True] and es.best == 0.6 and es.best_epoch == 2
    es.update(0.7, 5)
    assert not es.should_stop and es.bad_epochs == 0


def test_min_delta_and_min_mode():
    es = EarlyStopping("val_loss", patience=1, min_delta=0.05)
    assert es.update(1.0, 1) is True
    assert es.is_improvement(0.97) is False and es.is_improvement(0.9) is True
    assert es.update(0.97, 2) is False and es.should_stop


def test_tiebreak_and_nan():
    es = EarlyStopping("val_accuracy")
    es.update(0.8, 1, tiebreak=0.5)
    assert es.update(0.8, 2, tiebreak=0.4) is True and es.best_epoch == 2
    assert es.update(float("nan"), 3) is False
    assert es.should_stop is False  # patience 0 never stops


def test_state_round_trip_and_bad_monitor():
    es = EarlyStopping("val_loss", patience=3)
    es.update(1.0, 1)
    es.update(2.0, 2)
    other = EarlyStopping("val_loss", patience=3)
    other.load_state_dict(es.state_dict())
    assert (other.best, other.best_epoch, other.bad_epochs) == (1.0, 1, 1)
    with pytest.raises(
        ConfigError,
        match="'train.monitor': 'val_acc' is not one of val_accuracy, val_loss; did you mean 'val_accuracy'",
    ):
        Config().with_overrides({"train.monitor": "val_acc"})  # the closed set is checked by the config loader
