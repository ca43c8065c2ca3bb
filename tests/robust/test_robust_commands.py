"""`cnnkit train --adv-train ...`: the flags, their errors, and what an adversarially trained run shows."""

from __future__ import annotations

import json

import pytest

from cnnkit.cli import main

# mnist-mini, 100 training images, a 4-wide simple_cnn: seconds
TINY = [
    "--subset", "10", "--model", "simple_cnn", "--set", "model.kwargs={width: 4, stages: 2, depth: 1}",
    "--epochs", "1", "--batch-size", "25", "--threads", "1", "--quiet",
]  # fmt: skip


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--adv-train", "pgd", "--adv-eps", "-1"], "--adv-eps '-1': must be >= 0"),
        (["--adv-train", "pgd", "--adv-eps", "2"], "--adv-eps '2': must be <= 1"),
        (["--adv-train", "pgd", "--adv-eps", "8/0"], "--adv-eps '8/0': not a number"),
        (["--adv-train", "pgd", "--adv-eps", "abc"], "--adv-eps 'abc': not a number"),
        (["--adv-train", "fgsm"], "--adv-train: invalid choice: 'fgsm'"),
    ],
)
def test_unparsable_flags_are_refused_by_name(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as e:
        main(["train", *TINY, "--runs-dir", str(tmp_path), *flags])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--adv-train", "pgd", "--adv-steps", "0"], "--adv-steps 'adv.steps': must be in [1, 1000]"),
        (["--adv-train", "pgd", "--adv-eps", "0"], "--adv-eps 'adv.eps': must be in (0, 1]"),
        (["--adv-train", "pgd", "--adv-step-size", "0"], "--adv-step-size 'adv.step_size': must be in (0, 1]"),
        (["--adv-train", "pgd", "--adv-fraction", "1.5"], "--adv-fraction 'adv.fraction': must be in (0, 1]"),
        (["--adv-train", "pgd", "--adv-warmup", "-1"], "--adv-warmup 'adv.warmup_epochs': must be >= 0"),
        (
            ["--adv-eps", "8/255", "--adv-steps", "3"],
            "--adv-eps, --adv-steps set adversarial training up, but it is off",
        ),
        (["--set", "adv.method=fgsm"], "adv.method (--adv-train) 'fgsm': choose one of fgsm-rs, pgd"),
    ],
)
def test_bad_settings_are_refused_by_name_before_training(tmp_path, capsys, flags, message):
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_resume_keeps_the_adversarial_settings(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "r"), "--adv-eps", "0.1"]) == 2
    assert "--resume continues the run exactly as it was configured; drop adv.eps" in capsys.readouterr().err


def _adv_run(tmp_path, *extra: str) -> tuple:
    """A bf16 fgsm-rs run (the attack under bf16 autocast too), eps given as a fraction: (run folder, summary, stdout)."""
    argv = ["train", *TINY[:-1], "--precision", "bf16", "--adv-train", "fgsm-rs", "--adv-eps", "8/255"]
    argv += ["--set", "adv.robust_n=40", "--runs-dir", str(tmp_path), "--name", "a", *extra]
    assert main(argv) == 0
    run = tmp_path / "a"
    return run, json.loads((run / "summary.json").read_text())


def test_adversarial_bf16_run_shows_clean_and_robust_accuracy(tmp_path, capsys):
    """summary.json, report.md and the final lines carry the training's attack and the clean and robust accuracy."""
    run, s = _adv_run(tmp_path, "--set", "run.html_report=false")
    out = capsys.readouterr().out
    r = s["robust"]
    assert s["adversarial_training"]["method"] == "fgsm-rs" and s["adversarial_training"]["eps"] == pytest.approx(
        8 / 255
    )
    assert s["adversarial_training"]["step_size"] == pytest.approx(1.25 * 8 / 255)
    assert (r["attack"], r["n"], r["split"], r["eps"]) == ("PGD-10", 40, "test", pytest.approx(8 / 255))
    assert 0 <= r["robust_accuracy"] <= r["clean_accuracy"] <= 1
    assert f"test accuracy under PGD-10 at eps 0.03137 (40 images): {r['robust_accuracy']:.2%}" in out
    files = json.loads((run / "robust" / "robust.json").read_text())
    assert [row["pgd"] for row in files["rows"]] == [r["clean_accuracy"], r["robust_accuracy"]]
    assert (run / "robust" / "accuracy_vs_eps.png").is_file()
    md = (run / "report.md").read_text().splitlines()
    at = next(i for i, line in enumerate(md) if line.startswith("| test accuracy |"))
    assert md[at + 1].startswith(
        "| adversarial training | FGSM from a random start at eps 0.03137 (8/255), step 0.03922"
    )
    assert md[at + 2].startswith(
        f"| test accuracy under PGD-10 (L∞, eps 0.03137 = 8/255) | **{100 * r['robust_accuracy']:.2f} %** (40 images"
    )
    assert not (run / "report.html").exists()


@pytest.mark.slow
def test_adversarial_run_report_html_shows_clean_and_robust_accuracy(tmp_path):
    run, s = _adv_run(tmp_path)
    page = (run / "report.html").read_text()
    assert "<b>Adversarially trained</b> (FGSM from a random start at eps 0.03137" in page
    assert f"PGD-10 accuracy at eps 0.0314<b>{100 * s['robust']['robust_accuracy']:.2f} %</b>" in page  # overview


@pytest.mark.slow
def test_two_processes_train_adversarially(tmp_path, capsys):
    """`--devices 2`: the hooks travel to both gloo workers (pickled), rank 0 adds the robust numbers."""
    argv = ["train", "--devices", "2", "--model", "lenet5", "--subset", "10", "--epochs", "1", "--batch-size", "20"]
    argv += ["--threads", "1", "--adv-train", "pgd", "--adv-steps", "2", "--set", "adv.robust_n=40"]
    argv += ["--set", "run.html_report=false", "--runs-dir", str(tmp_path), "--name", "d", "--quiet"]
    assert main(argv) == 0
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["processes"] == 2 and s["adversarial_training"]["method"] == "pgd" and s["robust"]["n"] == 40
