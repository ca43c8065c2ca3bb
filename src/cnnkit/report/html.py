"""report.html: one self-contained page per run (images inline as base64, no network).

`write_html_report(run_dir)` reads only the run folder (its files and best.ckpt) and rebuilds
the evaluation split from the stored config. The page is report.html's own sections
(html_sections.py, one function each) followed by those other areas add (EXTRA_SECTIONS).
"""

from __future__ import annotations

import html
import importlib
import json
import os
import time
from pathlib import Path

from cnnkit.io_safety import replace_file
from cnnkit.report.html_parts import CSS
from cnnkit.report.html_sections import SECTIONS, Section, config_section, load_view

# Modules with `report_section(run_dir) -> (id, title, html) | None`: the sections other areas add
# (robustness, deployment...) from the result files they keep in the run folder.
EXTRA_SECTIONS: list[str] = [
    "cnnkit.robust.report",
    "cnnkit.deploy.report_section",
    "cnnkit.tasks.segment.report",
    "cnnkit.tasks.gan.report",
    "cnnkit.tasks.detect.report",
]


def write_html_report(
    run_dir: str | os.PathLike, *, gradcam_examples: int = 4, hardest: int = 16, samples_per_class: int = 6
) -> Path:
    """Write <run_dir>/report.html from the run folder alone and return its path."""
    t0 = time.perf_counter()
    if _task(Path(run_dir)) in ("segment", "gan", "detect"):  # no per-image classifier: the task's section is the run
        run = Path(run_dir)
        version = str(json.loads((run / "summary.json").read_text()).get("cnnkit_version", ""))
        sections = [*extra_sections(run), config_section(run)]
        replace_file(run / "report.html", render_page(run, sections, version=version, started=t0))
        return run / "report.html"
    view = load_view(
        Path(run_dir), hardest=hardest, gradcam_examples=gradcam_examples, samples_per_class=samples_per_class
    )
    sections = [build(view) for build in SECTIONS] + extra_sections(view.run)
    out = view.run / "report.html"
    page = render_page(view.run, sections, version=str(view.summary.get("cnnkit_version", "")), started=t0)
    replace_file(out, page)  # a full disk or a signal leaves the previous report (or none), never half of one
    return out


def _task(run: Path) -> str | None:
    try:
        return json.loads((run / "summary.json").read_text()).get("task")
    except (OSError, ValueError):
        return None  # load_view says what is missing


def extra_sections(run: Path) -> list[Section]:
    """Other areas' sections, from the files they wrote into the run folder (None: nothing to show)."""
    found = (importlib.import_module(module).report_section(run) for module in EXTRA_SECTIONS)
    return [s for s in found if s is not None]


def render_page(run: Path, sections: list[Section], *, version: str, started: float) -> str:
    """The whole page: a title, a navigation bar and one <section> per (id, title, html)."""
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>' for sid, title, content in sections
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>cnnkit run {html.escape(run.name)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>Run <code>{html.escape(run.name)}</code></h1><nav>{nav}</nav>{body}"
        f"<p class='note'>Written by cnnkit {html.escape(version)} in {time.perf_counter() - started:.1f} s. "
        f"Rebuild with <code>cnnkit report {html.escape(str(run))}</code>.</p></main></body></html>"
    )
