"""``trdnav fhir export``: a patient as a FHIR R4 Bundle (collection), from history files or from
the clinic database.

``trdnav fhir export FILE... [--out PATH]``: one file prints its Bundle (or writes it to ``--out``);
several files need ``--out FOLDER`` and write ``<patient id>.fhir.json`` there.
``trdnav fhir export --database-url URL --patient ID [--with-identity] [--out PATH]``: a stored
record (the read is audited, as is the export); the patient's name and identifiers only with
``--with-identity``. Invalid input exits 2 naming the file and field, as ``trdnav assess`` does.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from trdnav.core.assessment import assess
from trdnav.errors import InputError, Problem
from trdnav.history_files import load_history
from trdnav.interop.fhir.export import export_fhir
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.storage.settings import ENV_VAR, normalise_url

EXPORT_ACTION = "export_fhir"


def _report(problems: list[Problem]) -> None:
    from trdnav.cli import _report_problems  # cli imports this module: import when run

    _report_problems(tuple(problems))


def _fail(loc: str, code: str, message: str) -> typer.Exit:
    _report([Problem(loc, code, message)])
    return typer.Exit(2)


def _who() -> str:
    return "cli:" + (os.environ.get("USER") or "unknown")


def _file_name(patient_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", patient_id)[:100] + ".fhir.json"


def _dump(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def _from_database(
    url: str, patient_id: str, kb: Knowledge, today: date, with_identity: bool
) -> dict[str, Any]:
    from trdnav.storage import records
    from trdnav.storage.engine import make_engine, make_sessionmaker
    from trdnav.storage.repository import PatientNotFoundError, record_audit

    engine = make_engine(normalise_url(url))
    try:
        with make_sessionmaker(engine)() as session:
            try:
                record = records.load(session, patient_id, kb, today, _who())
            except PatientNotFoundError:
                raise _fail("--patient", "unknown_patient", f"no patient {patient_id!r}") from None
            identity = None
            if with_identity:
                from trdnav.storage.identity import load_identity

                identity = load_identity(session, patient_id, user=_who())
            history = record.history.model_copy(
                update={"assessed_on": record.assessment.assessed_on}
            )
            bundle = export_fhir(history, record.assessment, kb, identity)
            record_audit(session, _who(), EXPORT_ACTION, "patient", patient_id)
            session.commit()
            return bundle
    finally:
        engine.dispose()


def register(fhir_app: typer.Typer) -> None:
    """Add the ``export`` command to the ``fhir`` group."""

    @fhir_app.command("export")
    def export_command(
        files: Annotated[
            list[Path] | None, typer.Argument(help="history files (YAML or JSON)")
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="the Bundle file to write (a folder when several files are given); "
                "default: print the Bundle",
            ),
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url", envvar=ENV_VAR, help="export a stored patient from this database"
            ),
        ] = None,
        patient: Annotated[
            str | None, typer.Option("--patient", help="the stored patient's id")
        ] = None,
        with_identity: Annotated[
            bool,
            typer.Option(
                "--with-identity", help="include the stored name, MRN and other identifiers"
            ),
        ] = False,
        today: Annotated[
            str | None,
            typer.Option(help="the date used when a history has no assessed_on (YYYY-MM-DD)"),
        ] = None,
    ) -> None:
        """Export a patient as a FHIR R4 Bundle: the history, its assessment and the plan."""
        try:
            as_of = date.fromisoformat(today) if today else date.today()
        except ValueError:
            raise _fail("--today", "invalid_date", f"expected YYYY-MM-DD, got {today!r}") from None
        kb = default_knowledge()
        database_url = database_url or None  # an empty TRDNAV_DATABASE_URL names no database
        if patient is not None or (database_url is not None and not files):
            if files:
                raise _fail(
                    "--patient", "invalid_option", "give history files or --patient, not both"
                )
            if patient is None:
                raise _fail("--patient", "missing_option", "say which patient to export")
            if database_url is None:
                raise _fail(
                    "--database-url",
                    "missing_option",
                    f"say which database to read (--database-url or {ENV_VAR})",
                )
            bundle = _from_database(database_url, patient, kb, as_of, with_identity)
            _write([bundle], out)
            return
        if not files:
            raise _fail("FILE", "missing_argument", "give history files, or --patient ID")
        if with_identity:
            raise _fail(
                "--with-identity",
                "invalid_option",
                "a history file carries no identity: --with-identity needs --patient",
            )
        if len(files) > 1 and out is None:
            raise _fail(
                "--out", "missing_option", "several files: give --out FOLDER for their bundles"
            )
        bundles: list[dict[str, Any]] = []
        failed = False
        for path in files:
            try:
                history = load_history(path, kb, as_of)
            except InputError as exc:
                _report(list(exc.problems))
                failed = True
                continue
            bundles.append(export_fhir(history, assess(history, kb), kb))
        if bundles:
            _write(bundles, out, folder=len(files) > 1)
        if failed:
            raise typer.Exit(2)


def _write(bundles: list[dict[str, Any]], out: Path | None, folder: bool = False) -> None:
    if out is None:
        typer.echo(_dump(bundles[0]), nl=False)
        return
    if folder:
        if out.exists() and not out.is_dir():
            raise _fail("--out", "not_a_folder", f"{out} is a file: several bundles need a folder")
        out.mkdir(parents=True, exist_ok=True)
        for b in bundles:
            pid = _patient_id(b)
            target = out / _file_name(pid)
            target.write_text(_dump(b), encoding="utf-8")
            typer.echo(f"wrote {target}", err=True)
        return
    out.write_text(_dump(bundles[0]), encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)


def _patient_id(bundle: dict[str, Any]) -> str:
    from trdnav.interop.fhir.export_codes import NS_PATIENT

    for e in bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] == "Patient":
            for i in r["identifier"]:
                if i.get("system") == NS_PATIENT:
                    return str(i["value"])
    return str(bundle["id"])
