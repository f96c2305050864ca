"""Command line: thin commands that parse, call the core and render. Exit 0 ok, 2 invalid input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from trdnav import __version__
from trdnav.cli_cds import register as _register_cds
from trdnav.cli_chart import register as _register_chart
from trdnav.cli_cohort import register as _register_cohort
from trdnav.cli_courses import register as _register_courses
from trdnav.cli_db import register as _register_db
from trdnav.cli_fhir import register as _register_fhir
from trdnav.cli_knowledge import register as _register_knowledge
from trdnav.cli_knowledge import write_knowledge_docs as _write_knowledge_docs
from trdnav.cli_prior_auth import register as _register_prior_auth
from trdnav.cli_synth import register as _register_synth
from trdnav.cli_web import register as _register_web
from trdnav.core.adequacy import AdequacyRules
from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.errors import InputError, KnowledgeError, Problem
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.reports.text import render_assessment

app = typer.Typer(
    name="trdnav",
    help="TRD Navigator: decision support for treatment-resistant depression "
    "(not a medical device).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def _report_problems(problems: tuple[Problem, ...]) -> None:
    for p in problems:
        err.print(f"[bold red]error[/] {p.render()}", highlight=False, markup=True)


def history_schema(kb: Knowledge) -> dict[str, Any]:
    schema = History.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://trdnav.org/schema/history/v1.json"
    schema["title"] = "TRD Navigator treatment history, format version 1"
    cond = schema["$defs"]["Condition"]["properties"]["name"]
    cond["enum"] = sorted(kb.conditions)
    return schema


@app.command("assess")
def assess_command(
    files: Annotated[list[Path], typer.Argument(help="history files (YAML or JSON)")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    min_weeks: Annotated[
        float | None, typer.Option(help="weeks at adequate dose (default from knowledge base)")
    ] = None,
    min_adherence: Annotated[
        float | None, typer.Option(help="minimum adherence 0..1 (default from knowledge base)")
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="the date used when a file has no assessed_on (YYYY-MM-DD)")
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(
            envvar="TRDNAV_LOCALE", help="locale of the crisis resources shown with alerts (en-US)"
        ),
    ] = None,
) -> None:
    """Assess treatment histories: trial adequacy, TRD status and flags, staging, measurements,
    and suicide-risk alerts (always shown first)."""
    kb = default_knowledge()
    as_of = _as_of(today)
    bad: list[Problem] = []
    if min_weeks is not None and min_weeks <= 0:
        bad.append(Problem("--min-weeks", "invalid_option", "expected a number of weeks above 0"))
    if min_adherence is not None and not 0 <= min_adherence <= 1:
        bad.append(Problem("--min-adherence", "invalid_option", "expected a fraction from 0 to 1"))
    if locale is not None and locale not in kb.measurement.crisis_resources:
        known = ", ".join(sorted(kb.measurement.crisis_resources))
        bad.append(Problem("--locale", "unknown_locale", f"expected one of {known}"))
    if bad:
        _report_problems(tuple(bad))
        raise typer.Exit(2)
    rules = AdequacyRules.from_knowledge(kb, min_weeks=min_weeks, min_adherence=min_adherence)
    histories, failed = _load_all(files, kb, as_of)
    results = [assess(h, kb, rules, locale=locale) for h in histories]
    _emit(results, len(files), as_json, None, render_assessment, failed)


def _emit(
    results: list[Assessment],
    n_files: int,
    as_json: bool,
    include: set[str] | None,
    render: Callable[[Assessment], RenderableType],
    failed: bool,
) -> None:
    """Print the results (one JSON object for one file, else a list); exit 2 after any error."""
    if as_json:
        rows = [r.model_dump(mode="json", include=include) for r in results]
        out.print_json(json.dumps(rows[0] if n_files == 1 and rows else rows))
    else:
        for r in results:
            out.print(render(r))
    if failed:
        raise typer.Exit(2)


def _load_all(files: list[Path], kb: Knowledge, as_of: date) -> tuple[list[History], bool]:
    """Every valid history; each problem of the others is reported (exit 2 comes later)."""
    histories: list[History] = []
    failed = False
    for path in files:
        try:
            histories.append(load_history(path, kb, as_of))
        except InputError as exc:
            _report_problems(exc.problems)
            failed = True
    return histories, failed


def _as_of(today: str | None) -> date:
    try:
        return date.fromisoformat(today) if today else date.today()
    except ValueError:
        _report_problems(
            (Problem("--today", "invalid_date", f"expected YYYY-MM-DD, got {today!r}"),)
        )
        raise typer.Exit(2) from None


TodayOption = Annotated[
    str | None, typer.Option(help="the date used when a file has no assessed_on (YYYY-MM-DD)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.command("workup")
def workup_command(
    files: Annotated[list[Path], typer.Argument(help="history files (YAML or JSON)")],
    as_json: JsonOption = False,
    today: TodayOption = None,
) -> None:
    """The pseudo-resistance workup: screens, labs, adherence, interactions, pharmacogenomics."""
    from trdnav.reports.text import render_workup

    kb = default_knowledge()
    histories, failed = _load_all(files, kb, _as_of(today))
    results = [assess(h, kb) for h in histories]
    keep = {"patient_id", "alerts", "crisis_resources", "workup", "pgx"}
    _emit(results, len(files), as_json, keep, render_workup, failed)


@app.command("plan")
def plan_command(
    files: Annotated[list[Path], typer.Argument(help="history files (YAML or JSON)")],
    as_json: JsonOption = False,
    patient: Annotated[
        bool, typer.Option("--patient", help="plain-language summaries for the patient")
    ] = False,
    today: TodayOption = None,
    locale: Annotated[
        str | None, typer.Option(envvar="TRDNAV_LOCALE", help="locale of the crisis resources")
    ] = None,
) -> None:
    """The next-step plan: ranked options with their guideline line, evidence and safety."""
    from trdnav.reports.text import render_plan

    kb = default_knowledge()
    if locale is not None and locale not in kb.measurement.crisis_resources:
        known = ", ".join(sorted(kb.measurement.crisis_resources))
        _report_problems((Problem("--locale", "unknown_locale", f"expected one of {known}"),))
        raise typer.Exit(2)
    histories, failed = _load_all(files, kb, _as_of(today))
    results = [assess(h, kb, locale=locale) for h in histories]
    keep = {
        "patient_id",
        "alerts",
        "crisis_resources",
        "input_notes",
        "trd",
        "plan_context",
        "options",
        "safety",
        "citations",
    }
    _emit(results, len(files), as_json, keep, lambda r: render_plan(r, patient=patient), failed)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the treatment-history format (version 1)."""
    sys.stdout.write(json.dumps(history_schema(default_knowledge()), indent=2) + "\n")


@app.command("drugs")
def drugs_command(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the drugs of the knowledge base with their adequate doses and sources."""
    kb = default_knowledge()
    if as_json:
        rows = [d.model_dump(mode="json") for d in kb.drugs.values()]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(title=f"Knowledge base {kb.kb_version}: drugs", title_justify="left")
    for col in (
        "drug",
        "class",
        "min adequate",
        "usual max",
        "augmentation",
        "RxNorm",
        "ATC",
        "brands",
        "verified",
        "sources",
    ):
        t.add_column(col)
    for d in sorted(kb.drugs.values(), key=lambda d: (d.drug_class, d.id)):
        ad = d.antidepressant_dose
        au = d.augmentation_dose
        aug = ""
        if au is not None:
            if au.min_mg_per_day is not None:
                aug = f"{au.min_mg_per_day:g}–{au.max_mg_per_day or 0:g} mg"
            if au.serum_level is not None:
                aug += f" level ≥ {au.serum_level.min:g} {au.serum_level.unit}"
        t.add_row(
            d.name,
            d.drug_class,
            f"{ad.min_adequate_mg_per_day:g} {d.dose_unit}" if ad else "–",
            f"{ad.usual_max_mg_per_day:g}" if ad else "–",
            aug.strip() or "–",
            (d.rxnorm or "–") + ("" if d.rxnorm_verified or not d.rxnorm else "?"),
            (d.atc or "–") + ("" if d.atc_verified or not d.atc else "?"),
            ", ".join(d.brands),
            "yes" if d.verified else "NO",
            ", ".join(d.source),
        )
    out.print(t)
    out.print(
        "? = code not yet confirmed in a source; verified NO = dose figures not yet "
        "confirmed in the original."
    )


@app.command("instruments")
def instruments_command(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List the rating scales and screeners: items, range, bands, rules and sources."""
    kb = default_knowledge()
    if as_json:
        rows = [i.model_dump(mode="json") for i in kb.instruments.values()]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    t = Table(title=f"Knowledge base {kb.kb_version}: instruments", title_justify="left")
    for col in ("name", "rater", "items", "range", "bands", "missing items", "accepted names"):
        t.add_column(col, overflow="fold")
    for i in sorted(kb.instruments.values(), key=lambda i: i.name.lower()):
        t.add_row(
            i.name + ("" if i.verified else " (unverified)"),
            i.rater.replace("_", " "),
            str(len(i.items)),
            f"{i.total_min:g}–{i.total_max:g}" if i.scored and i.total_max is not None else "–",
            ", ".join(
                f"{b.min:g}–{b.max:g} {b.label}" if b.max is not None else f"≥{b.min:g} {b.label}"
                for b in i.bands
            )
            or "–",
            i.missing.rule + (f" ≤ {i.missing.max_missing}" if i.missing.max_missing else ""),
            ", ".join(i.aliases[:4]),
        )
    out.print(t)


@app.command("version")
def version_command() -> None:
    """Print the software and knowledge-base versions."""
    kb = default_knowledge()
    sys.stdout.write(f"trdnav {__version__} · knowledge base {kb.kb_version}\n")


def main() -> None:
    """Entry point: user mistakes exit 2 with a message, never a traceback."""
    try:
        app()
    except KnowledgeError as exc:
        _report_problems(exc.problems)
        err.print(
            "[bold red]the knowledge base failed validation: this is a defect of the "
            "release, please report it[/]"
        )
        sys.exit(3)


@app.command("knowledge-docs")
def knowledge_docs_command(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for the Markdown files")] = Path(
        "docs/knowledge"
    ),
) -> None:
    """Write the knowledge base as Markdown for clinical review (= trdnav knowledge docs)."""
    _write_knowledge_docs(out_dir)


_register_chart(app)
_register_courses(app)
_register_db(app)
_register_web(app)
_register_synth(app)
_register_cohort(app)
_register_knowledge(app)
_register_fhir(app)
_register_cds(app)
_register_prior_auth(app)
