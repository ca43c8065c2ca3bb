"""The version is written once (cnnkit.__version__), and the changelog has a section for it."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import cnnkit

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_read_from_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cnnkit.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", cnnkit.__version__)
    assert importlib.metadata.version("cnnkit") == cnnkit.__version__


def test_changelog_has_unreleased_and_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert headings[0] == "Unreleased"
    assert cnnkit.__version__ in headings  # a release moves the Unreleased lines under its version
    assert re.search(rf"^## \[{re.escape(cnnkit.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, flags=re.M)
