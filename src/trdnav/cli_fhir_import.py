"""``trdnav fhir import FILE``: a FHIR R4 Bundle or NDJSON -> a history file or the clinic database.

Prints the mapping report (every resource mapped or not, and each assumption). Exit 0 when a
history was made (even a reduced one: the report says what was left out); 2 for unusable input
(malformed JSON, a file above the size limit, no patient, an invalid patient or episode).
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from trdnav.errors import InputError, Problem
from trdnav.identity import PatientIdentity
from trdnav.interop.fhir.bundle import read_fhir_file
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.interop.fhir.report import FhirImport, ImportReport
from trdnav.knowledge.load import default_knowledge
from trdnav.storage.settings import ENV_VAR, normalise_url

out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def _fail(problems: tuple[Problem, ...] | list[Problem]) -> typer.Exit:
    for p in problems:
        err.print(f"[bold red]error[/] {p.render()}", highlight=False, markup=True)
    return typer.Exit(2)


def _history_data(result: FhirImport) -> dict[str, Any]:
    return result.history.model_dump(mode="json", by_alias=True, exclude_none=True)


def _identity_line(identity: PatientIdentity) -> str:
    parts = [identity.display_name or "(no name)"]
    if identity.birth_date:
        parts.append(f"born {identity.birth_date.isoformat()}")
    if identity.mrn:
        parts.append(f"MRN {identity.mrn}")
    return ", ".join(parts)


def print_report(report: ImportReport, console: Console = out) -> None:
    """The report as Rich tables: mapped, not mapped (with why), assumptions."""
    console.print(
        f"{report.resources} resources: {len({m.resource for m in report.mapped})} mapped, "
        f"{len(report.not_mapped)} not mapped, {len(report.assumptions)} assumption(s)"
    )
    if report.mapped:
        t = Table(title="Mapped", show_lines=False)
        t.add_column("resource")
        t.add_column("to")
        for m in report.mapped:
            t.add_row(m.resource, m.to)
        console.print(t)
    if report.not_mapped:
        t = Table(title="Not mapped")
        t.add_column("resource")
        t.add_column("code")
        t.add_column("why")
        for n in report.not_mapped:
            t.add_row(n.resource, n.code, n.reason)
        console.print(t)
    if report.assumptions:
        t = Table(title="Mapped with an assumption")
        t.add_column("resource")
        t.add_column("to")
        t.add_column("assumption")
        grouped: dict[tuple[str, str], list[str]] = {}
        for a in report.assumptions:
            grouped.setdefault((a.to or "", a.assumption), []).append(a.resource)
        for (to, text), resources in grouped.items():
            more = f" and {len(resources) - 1} more" if len(resources) > 1 else ""
            t.add_row(resources[0] + more, to, text)
        console.print(t)


def _store(result: FhirImport, url: str, today: date) -> dict[str, Any]:
    from trdnav.interop.fhir.store import store_import
    from trdnav.storage.engine import make_engine, make_sessionmaker
    from trdnav.storage.migrations import upgrade

    upgrade(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            who = "cli:" + (os.environ.get("USER") or "unknown")
            stored = store_import(session, result, default_knowledge(), today, who)
    finally:
        engine.dispose()
    return {
        "patient_id": stored.patient_id,
        "version": stored.version,
        "action": stored.action,
        "identity_version": stored.identity_version,
        "matched_by_mrn": stored.matched_by_mrn,
    }


def register(fhir_app: typer.Typer) -> None:
    """Add the ``import`` command to the ``fhir`` group."""

    @fhir_app.command("import")
    def import_command(
        file: Annotated[Path, typer.Argument(help="a FHIR R4 Bundle (JSON) or NDJSON file")],
        out_file: Annotated[
            Path | None,
            typer.Option("--out", help="write the history here (.yaml, or .json)"),
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                help="store the history and the patient's identity in this database "
                f"(given explicitly: {ENV_VAR} is not read, so an import never stores by surprise)",
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="print the history, identity and report as JSON")
        ] = False,
        today: Annotated[
            str | None, typer.Option(help="the date the import is as of (YYYY-MM-DD)")
        ] = None,
    ) -> None:
        """Import one patient from a FHIR R4 Bundle or NDJSON (at most 25 MiB); print the report."""
        try:
            as_of = date.fromisoformat(today) if today else date.today()
        except ValueError:
            problem = Problem("--today", "invalid_date", f"expected YYYY-MM-DD, got {today!r}")
            raise _fail([problem]) from None
        kb = default_knowledge()
        try:
            result = import_fhir(read_fhir_file(file), kb, as_of)
        except InputError as exc:
            raise _fail(
                [Problem(p.loc, p.code, p.message, p.file or str(file)) for p in exc.problems]
            ) from None
        stored: dict[str, Any] | None = None
        try:
            if out_file is not None:
                data = _history_data(result)
                text = (
                    json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                    if out_file.suffix.lower() == ".json"
                    else yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
                )
                out_file.write_text(text, encoding="utf-8")
            if database_url:
                stored = _store(result, normalise_url(database_url), as_of)
        except InputError as exc:
            raise _fail(exc.problems) from None
        except OSError as exc:
            problem = Problem("--out", "file_unwritable", f"cannot write: {exc.strerror}")
            raise _fail([problem]) from None
        if as_json:
            payload = {
                "patient_id": result.history.patient.id,
                "stored": stored,
                "identity": result.identity.model_dump(mode="json"),
                "history": _history_data(result),
                "report": result.report.model_dump(mode="json"),
            }
            typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
            return
        out.print(f"patient {result.history.patient.id}: {_identity_line(result.identity)}")
        print_report(result.report)
        if out_file is not None:
            out.print(f"wrote {out_file}")
        if stored is not None:
            out.print(
                f"stored {stored['patient_id']} ({stored['action']}, version {stored['version']})"
                + (" — the clinic's patient with this MRN" if stored["matched_by_mrn"] else "")
            )
        if out_file is None and not database_url:
            out.print("nothing written: give --out FILE or --database-url URL to keep the history")
