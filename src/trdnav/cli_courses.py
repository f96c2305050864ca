"""`trdnav protocols`, `trdnav course report`, `trdnav outcomes`: courses from the command line.

The protocol templates are the knowledge base's (with a clinic's own from
``TRDNAV_PROTOCOLS_DIR``); the course summary and the outcomes are the reports' own documents,
fed from the store (``--database-url`` or ``TRDNAV_DATABASE_URL``). Every read is audited.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import default_knowledge
from trdnav.storage import courses as store
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.settings import DEFAULT_DATABASE_URL, ENV_VAR, normalise_url

DatabaseUrl = Annotated[
    str,
    typer.Option("--database-url", envvar=ENV_VAR, help="SQLAlchemy URL of the database"),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _report(problems: list[Problem]) -> None:
    from trdnav.cli import _report_problems  # cli imports this module: import when run

    _report_problems(tuple(problems))


def _who() -> str:
    return "cli:" + (os.environ.get("USER") or "unknown")


def _today(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else date.today()
    except ValueError:
        _report([Problem("", "invalid_date", f"--today: expected YYYY-MM-DD, got {value!r}")])
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add the course commands to ``app``."""

    @app.command("protocols")
    def protocols_command(as_json: Json = False) -> None:
        """List the course protocol templates: treatment, label status, verified."""
        kb = default_knowledge()
        rows = [
            {
                "id": p.id,
                "name": p.name,
                "treatment": p.treatment,
                "label": p.label_status.replace("_", "-"),
                "verified": p.verified,
            }
            for p in sorted(kb.protocols.values(), key=lambda p: (p.treatment, p.id))
        ]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("id", "treatment", "name", "label", "verified")
        for r in rows:
            table.add_row(
                str(r["id"]),
                str(r["treatment"]),
                str(r["name"]),
                str(r["label"]),
                "yes" if r["verified"] else "UNVERIFIED",
            )
        Console().print(table)

    course_app = typer.Typer(help="One interventional course.", no_args_is_help=True)
    app.add_typer(course_app, name="course")

    @course_app.command("report")
    def course_report_command(
        course_id: Annotated[str, typer.Argument(help="the course id (C-…)")],
        out_path: Annotated[Path, typer.Option("--out", help="the PDF (or .html) to write")],
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
        clinic: Annotated[str, typer.Option(help="the clinic name printed")] = "TRD Navigator",
        today: Annotated[str | None, typer.Option(help="as of (YYYY-MM-DD)")] = None,
    ) -> None:
        """Write the course summary (PDF, or HTML for a .html name)."""
        from trdnav.web import course_ops, course_reports

        as_of = _today(today)
        kb = default_knowledge()
        engine = make_engine(normalise_url(database_url))
        try:
            with make_sessionmaker(engine)() as db:
                try:
                    o = course_ops.open_course(db, kb, course_id, _who())
                except store.CourseNotFoundError:
                    _report([Problem("course_id", "course_not_found", f"no course {course_id!r}")])
                    raise typer.Exit(2) from None
                except InputError as exc:
                    _report(list(exc.problems))
                    raise typer.Exit(2) from None
                if out_path.suffix.lower() == ".html":
                    html = course_reports.summary_html(db, kb, o, as_of, clinic, _who())
                    out_path.write_text(html, encoding="utf-8")
                else:
                    pdf = course_reports.summary_pdf(db, kb, o, as_of, clinic, _who())
                    out_path.write_bytes(pdf)
        finally:
            engine.dispose()
        typer.echo(f"wrote {out_path}")

    @app.command("outcomes")
    def outcomes_command(
        as_json: Json = False,
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
        today: Annotated[str | None, typer.Option(help="as of (YYYY-MM-DD)")] = None,
    ) -> None:
        """Clinic-level response and remission rates by treatment, with 95 % CIs."""
        from trdnav.reports.outcomes import format_rate, outcomes_json
        from trdnav.web.course_reports import clinic_rates

        as_of = _today(today)
        kb = default_knowledge()
        engine = make_engine(normalise_url(database_url))
        try:
            with make_sessionmaker(engine)() as db:
                rates = clinic_rates(db, kb, as_of, _who())
        finally:
            engine.dispose()
        if as_json:
            typer.echo(outcomes_json(rates, as_of))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("treatment", "courses", "response", "remission")
        for r in rates:
            table.add_row(
                r.treatment, str(r.courses), format_rate(r.response), format_rate(r.remission)
            )
        Console().print(table)
