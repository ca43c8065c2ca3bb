"""CLI verb of cnnkit.report: `cnnkit report RUN_DIR` rebuilds report.html (imports stay light here)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
    p = sub.add_parser("report", help="(re)build a run's self-contained report.html")
    p.add_argument("run", metavar="RUN_DIR")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnkit.io_safety import writing
    from cnnkit.report.html import write_html_report

    with writing(
        Path(args.run) / "report.html",
        hint="or copy the run folder somewhere writable and run cnnkit report on the copy",
    ):
        print(f"wrote {write_html_report(args.run)}")
    return 0
