"""CLI verbs of cnnkit.explain: `register(subparsers)` adds them (imports stay light here)."""

from __future__ import annotations


def register(sub) -> None:
    """Add this area's subcommands to the `cnnkit` parser."""
