"""``trdnav prior-auth FILE --payer ID --treatment rtms|esketamine``: a payer's prior-authorisation
criteria checked against a history file — each criterion met, not met, missing data or not
applicable, with its reason, the record rows it rests on and what is missing — with the
patient's suicide-risk alerts first; ``--pdf`` writes the request packet; ``--list`` lists the
policies. Exit 0 with a result (whatever it says), 2 on invalid input, never a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.core.prior_auth.model import CriterionResult
from trdnav.errors import InputError, Problem
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.reports.prior_auth import (
    DISCLAIMER,
    STATUS_LABELS,
    UNVERIFIED,
    PriorAuthCheck,
    check_policy,
    choose_policy,
    effective_line,
    policy_list,
    render_packet_html,
    screen_line,
    summary_line,
)


def _fail(problems: tuple[Problem, ...] | list[Problem]) -> typer.Exit:
    from trdnav.cli import _report_problems  # cli imports this module: import when run

    _report_problems(tuple(problems))
    return typer.Exit(2)


def _echo(line: str = "") -> None:
    typer.echo(line)


def policy_rows(kb: Knowledge) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "payer": p.payer,
            "name": p.name,
            "policy_number": p.policy_number,
            "treatment": p.treatment,
            "version": p.version,
            "effective_from": p.effective_from.isoformat() if p.effective_from else None,
            "effective_to": p.effective_to.isoformat() if p.effective_to else None,
            "typical": p.typical,
            "clinic": p.clinic,
            "verified": p.verified,
        }
        for p in policy_list(kb)
    ]


def _print_policies(kb: Knowledge, as_json: bool) -> None:
    rows = policy_rows(kb)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        _echo("No payer policy is loaded (knowledge/data/payers, TRDNAV_PAYERS_DIR).")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "payer", "treatment", "version", "verified", title_justify="left")
    table.title = f"Payer policies ({len(rows)})"
    for r in rows:
        payer = str(r["payer"]) + (" (typical criteria)" if r["typical"] else "")
        payer += " (clinic)" if r["clinic"] else ""
        verified = "yes" if r["verified"] else "UNVERIFIED"
        table.add_row(str(r["id"]), payer, str(r["treatment"]), str(r["version"]), verified)
    Console(soft_wrap=False).print(table)


def _criterion(c: CriterionResult) -> list[str]:
    section = f" [{c.section}]" if c.section else ""
    confirm = " (attestation: the clinician confirms)" if c.attestation else ""
    lines = [f"  {STATUS_LABELS[c.status]:<14} {c.text}{section}", f"      {c.reason}{confirm}"]
    for e in c.evidence:
        on = f", {e.on}" if e.on else ""
        mark = "+" if e.counts else "-"
        why = "" if e.counts else " — does not count" + (f": {e.why_not}" if e.why_not else "")
        lines.append(f"      {mark} {e.summary} ({e.ref}{on}){why}")
    lines += [f"      missing: {m}" for m in c.missing]
    return lines


def render_text(check: PriorAuthCheck, a: Assessment) -> list[str]:
    """The policy's label first, then the suicide-risk alerts, each criterion, the screen, the
    summary line."""
    p, r = check.policy, check.result
    verified = (
        f"verified{f' against {p.checked_against}' if p.checked_against else ''}"
        if p.verified
        else UNVERIFIED
    )
    lines = [f"Policy: {r.policy_label}", f"  treatment {p.treatment} · {effective_line(p)}"]
    if not r.in_effect:
        lines.append("  NOT IN EFFECT on the request date")
    if p.typical:
        lines.append("  a generic set of typical criteria, not a payer's own policy")
    lines.append(f"  {verified}")
    if p.url:
        lines.append(f"  published at {p.url}")
    lines.append(f"Patient {r.patient_id} · request {r.request_date} ({r.kind})")
    for al in check.suicide_alerts:
        lines.append(f"SUICIDE RISK: {al.severity.upper()} · {al.date} · {al.message}")
    if check.suicide_alerts and a.crisis_resources:
        lines.append(
            "Crisis resources: " + "; ".join(f"{c.name}: {c.contact}" for c in a.crisis_resources)
        )
    lines += ["", "Criteria:"]
    for c in r.results:
        lines += _criterion(c)
    lines += [f"Note: {n}" for n in r.notes]
    lines += ["", f"Contraindication screen: {screen_line(check)}"]
    lines += [f"  {f.severity.upper()}: {f.message}" for f in check.findings]
    if r.left_out:
        lines.append("Not checked here (left out of the policy's encoding):")
        lines += [f"  - {x}" for x in r.left_out]
    lines += ["", f"Summary: {summary_line(r)}", DISCLAIMER]
    return lines


def _write_pdf(
    out: Path, check: PriorAuthCheck, history: History, a: Assessment, kb: Knowledge
) -> None:
    from trdnav.core.measures import score_measurements
    from trdnav.reports.chart import default_instrument, render_chart
    from trdnav.reports.pdf import render_pdf

    scored = score_measurements(history, kb)
    instrument = default_instrument(scored)
    chart = None
    if instrument is not None:
        try:
            chart = render_chart(
                history, scored, check.suicide_alerts, kb, instrument, "svg"
            ).decode()
        except ValueError:
            chart = None
    html = render_packet_html(check, history, a, kb, chart, check.result.request_date)
    try:
        out.write_bytes(render_pdf(html))
    except OSError as exc:
        problem = Problem("--pdf", "file_unwritable", f"cannot write {out}: {exc.strerror}")
        raise _fail([problem]) from None
    typer.echo(f"wrote {out}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``trdnav prior-auth`` to the main app."""

    @app.command("prior-auth")
    def prior_auth_command(
        file: Annotated[
            Path | None, typer.Argument(help="history file (YAML or JSON)", show_default=False)
        ] = None,
        payer: Annotated[str | None, typer.Option("--payer", help="policy id (see --list)")] = None,
        treatment: Annotated[
            str | None, typer.Option("--treatment", help="rtms or esketamine")
        ] = None,
        request_date: Annotated[
            str | None,
            typer.Option(
                "--date",
                help="request date YYYY-MM-DD (default: the file's assessed_on, else today)",
            ),
        ] = None,
        renewal: Annotated[
            bool, typer.Option("--renewal", help="a renewal request (default: initial)")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
        pdf: Annotated[
            Path | None, typer.Option("--pdf", help="also write the request packet as PDF here")
        ] = None,
        list_policies: Annotated[
            bool, typer.Option("--list", help="list the payer policies and exit")
        ] = False,
    ) -> None:
        """Check a payer's prior-authorisation criteria for rTMS or esketamine against a history:
        each criterion MET / NOT MET / MISSING DATA / N/A with its evidence; suicide-risk alerts
        first. A criterion the record cannot decide is never shown as met."""
        kb = default_knowledge()
        if list_policies:
            _print_policies(kb, as_json)
            return
        problems: list[Problem] = []
        if file is None:
            problems.append(
                Problem("FILE", "missing_argument", "give a history file (or --list the policies)")
            )
        on: date | None = None
        if request_date is not None:
            try:
                on = date.fromisoformat(request_date)
            except ValueError:
                problems.append(
                    Problem("--date", "invalid_date", f"expected YYYY-MM-DD, got {request_date!r}")
                )
        try:
            policy = choose_policy(
                kb, payer, treatment, payer_field="--payer", treatment_field="--treatment"
            )
        except InputError as exc:
            problems += exc.problems
        if problems or file is None:
            raise _fail(problems)
        try:
            history = load_history(file, kb, on or date.today())
        except InputError as exc:
            raise _fail(exc.problems) from None
        a = assess(history, kb)
        when = on or history.assessed_on or date.today()
        check = check_policy(policy, history, a, kb, when, "renewal" if renewal else "initial")
        if pdf is not None:
            _write_pdf(pdf, check, history, a, kb)
        if as_json:
            sys.stdout.write(check.out().model_dump_json(indent=2) + "\n")
            return
        for line in render_text(check, a):
            _echo(line)
