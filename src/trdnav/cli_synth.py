"""`trdnav synth omop`: synthetic OMOP CDM data with treatment-resistant depression journeys."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to the main app."""
    synth_app = typer.Typer(help="Synthetic data for testing and benchmarks.", no_args_is_help=True)
    app.add_typer(synth_app, name="synth")
