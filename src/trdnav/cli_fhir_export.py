"""``trdnav fhir export``."""

from __future__ import annotations

import typer


def register(fhir_app: typer.Typer) -> None:
    """Add the ``export`` command to the ``fhir`` group."""
