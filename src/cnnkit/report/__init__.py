"""The run reports: report.md (`markdown.render_report`, written at the end of a run) and the
self-contained report.html (`html.write_html_report`, also rebuilt by `cnnkit report`).

The names load on first use, so `cnnkit --help` (which imports report.commands) stays fast.
"""

from __future__ import annotations

from cnnkit._lazy import lazy_attributes

_PUBLIC = {
    "render_report": "cnnkit.report.markdown",
    "write_html_report": "cnnkit.report.html",
    "EXTRA_SECTIONS": "cnnkit.report.html",
}

__all__ = sorted(_PUBLIC)
__getattr__ = lazy_attributes(__name__, _PUBLIC)
