"""DistributedDataParallel on the CPU: 2 gloo processes against one process with the same global batch."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.training.trainer import train

# LeNet-5 has no BatchNorm or dropout, so the 2-process run is the 1-process run up to float rounding
TINY = {
    "data.subset_per_class": 10,
    "model.name": "lenet5",
    "train.epochs": 2,
    "train.batch_size": 20,
    "runtime.num_threads": 1,
    "optim.lr": 0.05,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, runs: str, out: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    import torch.distributed as dist

    cfg = Config().with_overrides({**TINY, "run.runs_dir": runs, "run.name": "ddp", "runtime.device": "cpu"})
    losses = []
    run = train(cfg, quiet=True, on_step=lambda epoch, step, loss: losses.append(loss))
    torch.save(
        {"state_dict": run.model.state_dict(), "rows": run.metrics, "dir": str(run.dir), "losses": losses},
        os.path.join(out, f"rank{rank}.pt"),
    )
    dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    out.mkdir()
    mp.start_processes(_rank, args=(_free_port(), str(runs), str(out)), nprocs=2, join=True, start_method="spawn")
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert r0["dir"] == r1["dir"] == str(runs / "ddp")
    assert [p.name for p in runs.iterdir()] == ["ddp"]  # rank 1 wrote no run folder of its own
    last = torch.load(runs / "ddp" / "last.ckpt", weights_only=True)
    # identical weights on both ranks after training (rank 0's are in last.ckpt; rank 1 returned its own)
    assert all(torch.equal(last["state_dict"][k], r1["state_dict"][k]) for k in last["state_dict"])
    assert [r["val_accuracy"] for r in r0["rows"]] == [r["val_accuracy"] for r in r1["rows"]]

    losses = []
    single = train(
        Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path / "single"), "runtime.device": "cpu"}),
        quiet=True,
        on_step=lambda epoch, step, loss: losses.append(loss),
    )
    # each rank saw its own half of every global batch: different losses, whose mean is the global batch's
    assert len(r0["losses"]) == len(r1["losses"]) == len(losses) == 10
    assert all(abs(a - b) > 1e-6 for a, b in zip(r0["losses"], r1["losses"]))
    assert all(abs((a + b) / 2 - c) < 1e-4 for a, b, c in zip(r0["losses"], r1["losses"], losses))
    one = torch.load(single.last_checkpoint, weights_only=True)["state_dict"]
    for k in one:
        assert torch.allclose(one[k], last["state_dict"][k], atol=1e-5, rtol=1e-4), k
    rows = single.metrics
    for a, b in zip(rows, r0["rows"]):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-4  # the train loss is reduced over both ranks
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-4
    summary = json.loads((runs / "ddp" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["test"]["num_samples"] == 2000


@pytest.mark.slow
def test_cli_devices_launches_two_processes(tmp_path, capsys):
    from cnnkit.cli import main

    args = [
        "train",
        "--devices",
        "2",
        "--model",
        "lenet5",
        "--subset",
        "10",
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--threads",
        "1",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "d",
        "--quiet",
    ]
    assert main(args) == 0
    assert f"Run folder: {tmp_path / 'd'}" in capsys.readouterr().out
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["processes"] == 2 and [p.name for p in tmp_path.iterdir()] == ["d"]


def test_each_rank_resumes_its_own_running_sums_of_the_epoch():
    from cnnkit.training.distributed import epoch_state_for_rank

    saved = {
        "order": torch.arange(4),
        "step": 2,
        "loss_sum": torch.tensor(3.5),
        "l1_sum": torch.tensor(0.0),
        "correct": torch.tensor(7),
        "seen": 20,
    }
    sums = torch.tensor(
        [[3.5, 0.0, 7.0, 20.0], [4.25, 0.0, 9.0, 20.0]], dtype=torch.float64
    )  # rank 0 saved its own and rank 1's
    r1 = epoch_state_for_rank(saved, sums, rank=1, world_size=2)
    assert (float(r1["loss_sum"]), int(r1["correct"]), r1["seen"], r1["step"]) == (4.25, 9, 20, 2)
    assert r1["loss_sum"].dtype == torch.float32 and r1["correct"].dtype == torch.long
    # resumed by one process: it carries the totals
    one = epoch_state_for_rank(saved, sums, rank=0, world_size=1)
    assert (float(one["loss_sum"]), int(one["correct"]), one["seen"]) == (7.75, 16, 40)
    # a one-process checkpoint resumed by two: rank 0 carries it, rank 1 starts from zero
    assert epoch_state_for_rank(saved, None, rank=0, world_size=1) is saved
    r0, r1 = (epoch_state_for_rank(saved, None, rank=r, world_size=2) for r in (0, 1))
    assert (float(r0["loss_sum"]), r0["seen"], float(r1["loss_sum"]), r1["seen"]) == (3.5, 20, 0.0, 0)


def _rank_budget(rank: int, port: int, runs: str, out: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    import time

    import torch.distributed as dist

    cfg = Config().with_overrides(
        {
            **TINY,
            "run.runs_dir": runs,
            "run.name": "ddp",
            "runtime.device": "cpu",
            "train.time_budget": 3.0,
            "train.epochs": 100,
        }
    )
    losses = []

    def step(epoch, step, loss):
        losses.append(loss)
        if rank == 1:
            time.sleep(0.01)  # rank 1 measures a slower clock: only rank 0's plan may count

    run = train(cfg, quiet=True, on_step=step)
    torch.save({"state_dict": run.model.state_dict(), "losses": losses}, os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_share_one_time_budget_plan(tmp_path):
    """Each rank times itself differently; the plan is rank 0's, so both stop at the same step (no hang)."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    out.mkdir()
    ctx = mp.start_processes(
        _rank_budget, args=(_free_port(), str(runs), str(out)), nprocs=2, join=False, start_method="spawn"
    )
    import time

    deadline = time.monotonic() + 120
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the two processes did not finish: their time-budget plans disagreed")
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    summary = json.loads((runs / "ddp" / "summary.json").read_text())
    assert len(r0["losses"]) == len(r1["losses"]) == summary["steps"] > 0
    # the weights both ranks ended training with (rank 0's run.model holds best.ckpt's, which may be an earlier epoch's)
    last = torch.load(runs / "ddp" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(last[k], r1["state_dict"][k]) for k in last)
    best = torch.load(runs / "ddp" / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(best[k], r0["state_dict"][k]) for k in best)


@pytest.fixture
def one_rank_group(monkeypatch, tmp_path):
    """A real gloo process group of one process (this one), as torchrun's environment describes it."""
    import torch.distributed as dist

    from cnnkit.training import distributed

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    assert not dist.is_initialized()
    try:
        distributed.init(torch.device("cpu"))
        yield dist
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_the_collectives_of_one_rank(one_rank_group):
    from types import SimpleNamespace

    from cnnkit.training import distributed

    dist = one_rank_group
    assert dist.is_initialized() and dist.get_backend() == "gloo" and distributed.world() == (0, 1, 0)
    distributed.init(torch.device("cpu"))  # joined already: nothing happens (a second init would raise)
    assert distributed.broadcast_object({"run_dir": "runs/x"}) == {"run_dir": "runs/x"}
    assert distributed.device_for_rank(torch.device("cpu"), 0) == torch.device("cpu")
    state = SimpleNamespace(loss_sum=torch.tensor(3.5), l1_sum=torch.tensor(0.25), correct=torch.tensor(7), seen=20)
    sums = distributed.gather_epoch_sums(state, torch.device("cpu"))
    assert sums.dtype == torch.float64 and sums.tolist() == [[3.5, 0.25, 7.0, 20.0]]


def test_world_outside_torchrun_is_one_process(monkeypatch):
    from cnnkit.training.distributed import world

    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert world() == (0, 1, 0)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world() == (3, 4, 1)


def test_a_rank_without_the_rendezvous_address_is_told_how_to_start(monkeypatch, capsys):
    """RANK / WORLD_SIZE set by hand, MASTER_ADDR / MASTER_PORT forgotten: a one-line error, not torch's ValueError."""
    from cnnkit.cli import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert main(["train", "--model", "lenet5", "--subset", "2", "--epochs", "1", "--batch-size", "20", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "cnnkit train: error: WORLD_SIZE=2 asks for several processes, but MASTER_ADDR and MASTER_PORT are not set; "
        "start them with torchrun or cnnkit train --devices N\n"
    )
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    from cnnkit.training import distributed

    with pytest.raises(ConfigError, match="but MASTER_PORT is not set;"):
        distributed.init(torch.device("cpu"))
