"""`trdnav cohort`: find the TRD cohort in OMOP CDM data (DuckDB, PostgreSQL or Spark)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``cohort`` command to the main app."""
