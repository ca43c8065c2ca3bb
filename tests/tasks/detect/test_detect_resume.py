"""Resume parity: a tiny detection run stopped after 3 of its 4 steps (mid-epoch 2) and resumed ends with the
same weights, optimiser state and metrics, bit for bit, as the run that was never stopped."""

import json

import pytest
import torch
from tests.tasks.detect.detect_tiny import tiny_cfg, tiny_data

from cnnkit.tasks.detect.train import load_detector_checkpoint, train_detection


class _After:
    """requested turns True at the n-th look (the loop looks once per step)."""

    def __init__(self, n: int):
        self.n, self.looks = n, 0

    @property
    def requested(self) -> bool:
        self.looks += 1
        return self.looks >= self.n


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow  # three tiny runs: ~15 s idle
def test_stopped_mid_epoch_and_resumed_matches_the_uninterrupted_run(tmp_path):
    cfg = {"epochs": 2, "batch_size": 2}  # 4 scenes: 2 steps an epoch
    whole = train_detection(tiny_cfg(tmp_path / "a", **cfg), data=tiny_data(), quiet=True)
    cut = train_detection(tiny_cfg(tmp_path / "b", **cfg), data=tiny_data(), quiet=True, stop=_After(3))
    saved = load_detector_checkpoint(cut / "last.ckpt")["train_state"]
    assert (saved["epoch"], saved["step"], len(saved["order"])) == (1, 1, 4) and not (cut / "summary.json").exists()
    train_detection(None, data=tiny_data(), resume=cut, quiet=True)
    a, b = load_detector_checkpoint(whole / "last.ckpt"), load_detector_checkpoint(cut / "last.ckpt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    sa, sb = a["train_state"]["optimizer"]["state"], b["train_state"]["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    assert _strip(a["train_state"]["rows"]) == _strip(b["train_state"]["rows"])
    ja, jb = (json.loads((r / "summary.json").read_text()) for r in (whole, cut))
    timing = ("train_seconds", "seconds_per_image")
    assert {k: v for k, v in ja.items() if k not in timing} == {k: v for k, v in jb.items() if k not in timing}
