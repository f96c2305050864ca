"""`trdnav chart` (being written)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the chart command to ``app``."""
