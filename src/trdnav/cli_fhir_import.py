"""``trdnav fhir import``."""

from __future__ import annotations

import typer


def register(fhir_app: typer.Typer) -> None:
    """Add the ``import`` command to the ``fhir`` group."""
