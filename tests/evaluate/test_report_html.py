import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.report.html import write_html_report

SECTIONS = [
    "overview",
    "config",
    "dataset",
    "curves",
    "per-class",
    "confusion",
    "calibration",
    "hardest",
    "gradcam",
    "filters",
    "featuremaps",
    "model",
]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.links, self.svgs = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag in ("a", "link", "script") and (a.get("href") or a.get("src")):
            self.links.append(a.get("href") or a.get("src"))
        if tag == "svg":
            self.svgs += 1


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("report") / "tiny"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("report.html"))
    return write_html_report(run)


def test_report_is_self_contained_with_every_section(report):
    page = report.read_text(encoding="utf-8")
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.ids == SECTIONS
    assert all(link.startswith("#") for link in parsed.links), parsed.links  # only in-page links
    assert 'src="http' not in page and "url(" not in page  # nothing fetched from a network
    assert parsed.svgs == 1  # the reliability diagram
    # every picture is an inline PNG that decodes: learning curves, confusion matrix, samples per
    # class (10), hardest (16), Grad-CAM (up to 8), filters, the example and its feature maps
    assert len(parsed.imgs) >= 30
    for src in parsed.imgs:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.width > 0 and im.height > 0
    assert "Grad-CAM for the predicted class at <code>features.stage1</code>" in page
    assert "Expected calibration error" in page and "weighted" in page


def test_report_command_rebuilds_it(report, capsys):
    report.unlink()
    assert main(["report", str(report.parent)]) == 0
    assert report.is_file() and f"wrote {report}" in capsys.readouterr().out


def test_report_needs_a_run_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no summary.json" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (Debian package `chromium`)")
def test_report_opens_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    args = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,2400",
        f"--screenshot={shot}",
        report.as_uri(),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert done.returncode == 0, done.stderr[-2000:]
    assert console == []
    with Image.open(shot) as im:
        assert im.size == (1200, 2400)
        assert len(np.unique(np.asarray(im.convert("L").resize((60, 120))))) > 20  # a rendered page, not a blank one
    dom = subprocess.run([*args[:3], "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert all(f'id="{s}"' in dom for s in SECTIONS)


def test_report_of_a_multilabel_run(report, monkeypatch):
    """Multi-hot labels (here: the digit plus 'odd'-digit images also carrying label 1) get
    per-class AP and mean AP; the single-label sections say they do not apply."""
    import dataclasses

    import torch

    from cnnkit.data.types import Split
    from cnnkit.evaluate import api

    real = api.predict_split

    def multi_hot(*args, **kwargs):
        p = real(*args, **kwargs)
        y = torch.nn.functional.one_hot(p.split.labels, len(p.class_names)).float()
        y[p.split.labels % 2 == 1, 1] = 1.0
        return dataclasses.replace(p, split=Split(p.split.images, y, p.split.paths))

    monkeypatch.setattr(api, "predict_split", multi_hot)
    page = write_html_report(report.parent).read_text(encoding="utf-8")
    parsed = _Collect()
    parsed.feed(page)
    assert parsed.ids == SECTIONS
    assert "mean AP" in page and '<th class="">AP</th>' in page
    assert page.count("Not shown for multi-label runs.") == 3
