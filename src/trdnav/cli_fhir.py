"""``trdnav fhir …``: FHIR R4 import and export (the commands live in cli_fhir_import and
cli_fhir_export)."""

from __future__ import annotations

import typer

from trdnav.cli_fhir_export import register as _register_export
from trdnav.cli_fhir_import import register as _register_import

fhir_app = typer.Typer(help="FHIR R4: import a Bundle or NDJSON, export a patient as a Bundle.")


def register(app: typer.Typer) -> None:
    _register_import(fhir_app)
    _register_export(fhir_app)
    app.add_typer(fhir_app, name="fhir")
