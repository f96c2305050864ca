"""The readable report of an assessment (Rich renderables; the CLI prints them)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.alerts import Alert
from trdnav.core.assessment import Assessment
from trdnav.core.current_state import OngoingTreatment
from trdnav.core.staging.result import StageResult
from trdnav.core.trajectory import TrajectoryPoint

SEVERITY_ORDER = ["unassessed", "low", "moderate", "high"]
STATUS_TEXT = {
    "trd": "TREATMENT-RESISTANT DEPRESSION (TRD)",
    "not_trd": "not TRD",
    "indeterminate": "INDETERMINATE: information missing",
}


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _verdict(v: TrialVerdict) -> str:
    if v.role != "antidepressant":
        return "add-on, not counted"
    if v.counts_as_failure:
        return "FAILED"
    if v.adequate is None:
        return "adequacy unknown"
    return "adequate" if v.adequate else "not adequate"


def _trials(a: Assessment) -> Table:
    t = Table(title="Medication trials", title_justify="left", padding=(0, 1))
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("drug / class", overflow="fold", min_width=12)
    t.add_column("mg/d max/min", justify="right")
    t.add_column("wk≥min", justify="right")
    t.add_column("taken", justify="right", no_wrap=True)
    t.add_column("outcome", overflow="fold", max_width=9)
    t.add_column("verdict", overflow="fold", max_width=12)
    for v in a.trials:
        dose = "–" if v.max_mg_per_day is None else f"{v.max_mg_per_day:g}"
        dose += " / " + (
            "–" if v.min_adequate_mg_per_day is None else f"{v.min_adequate_mg_per_day:g}"
        )
        typed = f"\n(typed {v.drug_input!r}: a known misspelling)" if v.misspelling else ""
        t.add_row(
            str(v.index),
            f"{v.drug}\n{v.drug_class.replace('_', ' ')}{typed}",
            dose,
            "–" if v.weeks_at_adequate_dose is None else f"{v.weeks_at_adequate_dose:g}",
            "–" if v.adherence is None else f"{v.adherence:.0%}",
            v.outcome.value.replace("_", " "),
            _verdict(v),
            style="bold" if v.counts_as_failure else None,
        )
    return t


def _why(a: Assessment) -> Text:
    out = Text()
    for v in a.trials:
        for e in v.explanations:
            out.append(f"  #{v.index} {v.drug}: ", style="bold")
            out.append(f"{e.message} [{e.code}]")
            if e.citations:
                out.append(f" ({', '.join(e.citations)})", style="dim")
            out.append("\n")
    return out


def stage_line(s: StageResult, empty: str = "–") -> str:
    """A staging result in one line: label · score · band (``empty`` when none is given)."""
    parts = []
    if s.label is not None:
        parts.append(s.label)
    if s.score is not None:
        parts.append(f"score {s.score:g}")
    if s.band is not None:
        parts.append(s.band)
    return " · ".join(parts) or empty


def _staging(a: Assessment) -> Group:
    t = Table(title="Staging", title_justify="left", show_lines=True, padding=(0, 1))
    t.add_column("method", overflow="fold", max_width=16)
    t.add_column("result", overflow="fold", max_width=20)
    t.add_column("breakdown", overflow="fold", min_width=30)
    notes: list[str] = []
    for s in a.staging.values():
        lines = [
            f"{i.item.replace('_', ' ')}: {i.value}"
            + (f" → {i.points:g}" if i.points is not None else "")
            + (f" ({'met' if i.met else 'not met'})" if i.met is not None else "")
            for i in s.items
        ]
        if s.missing:
            lines.append("needs: " + ", ".join(m.replace("_", " ") for m in s.missing))
        marks = []
        for n in s.notes:
            if n not in notes:
                notes.append(n)
            marks.append(f"[{notes.index(n) + 1}]")
        lines.append(
            "sources: "
            + ", ".join(s.citations)
            + ("" if s.verified else " · UNVERIFIED")
            + (" · see note " + " ".join(marks) if marks else "")
        )
        t.add_row(s.name, stage_line(s), "\n".join(lines))
    foot = Text()
    if "staging" in a.verification:
        foot.append(f"  {a.verification['staging'].line}\n", style="dim")
    for k, n in enumerate(notes, start=1):
        foot.append(f"  [{k}] {n}\n", style="dim")
    return Group(t, foot)


def _alerts(a: Assessment) -> Text:
    """The safety net: printed before anything else whenever there is an alert."""
    t = Text()
    suicide = [al for al in a.alerts if al.code == "suicide_risk"]
    worst = max((al.severity for al in suicide), key=SEVERITY_ORDER.index)
    t.append(
        f"⚠ SUICIDE RISK — {len(suicide)} alert(s), highest: {worst.upper()}\n",
        style="bold white on red",
    )
    for al in suicide:
        t.append(f"  ! [{al.severity}] {al.message}", style="bold red")
        t.append(f" ({', '.join(al.citations)})\n", style="dim")
    if a.crisis_resources:
        t.append(
            "  Crisis resources: "
            + "; ".join(f"{r.name}: {r.contact}" for r in a.crisis_resources)
            + "\n",
            style="bold",
        )
    return t


def _yes(value: bool | None) -> str:
    return "–" if value is None else ("YES" if value else "no")


def _measurements(a: Assessment) -> Group:
    t = Table(title="Measurements", title_justify="left", padding=(0, 1))
    t.add_column("instrument", overflow="fold")
    t.add_column("baseline", overflow="fold")
    t.add_column("latest", overflow="fold")
    t.add_column("change", justify="right", no_wrap=True)
    t.add_column("response", no_wrap=True)
    t.add_column("remission", no_wrap=True)
    t.add_column("reliable change", overflow="fold")
    notes = Text()
    for tr in a.measurements.values():

        def point(p: TrajectoryPoint | None) -> str:
            if p is None:
                return "–"
            return f"{p.total:g} {p.band or ''}\n{p.date.isoformat()}".replace(" \n", "\n")

        rc = tr.reliable_change.replace("_", " ")
        if tr.plateau:
            rc += "; PLATEAU"
        if tr.relapse_on:
            rc += f"; RELAPSE {tr.relapse_on.isoformat()}"
        t.add_row(
            tr.instrument + ("" if tr.verified else "\n(unverified)"),
            point(tr.baseline),
            point(tr.latest),
            "–" if tr.percent_change is None else f"{tr.percent_change:+.1f}%",
            _yes(tr.response),
            _yes(tr.remission) + (" (sustained)" if tr.sustained_remission else ""),
            rc,
        )
        for e in tr.explanations:
            notes.append(f"  {tr.instrument}: {e}\n", style="dim")
    return Group(t, notes)


def _other_alerts(alerts: list[Alert]) -> Text:
    t = Text("Alerts\n", style="bold")
    for al in alerts:
        style = "bold red" if al.severity == "high" else "bold yellow"
        t.append(f"  ! [{al.severity}] {al.code}: {al.message}", style=style)
        t.append(f" ({', '.join(al.citations)})\n", style="dim")
    return t


def _workup(a: Assessment) -> Group:
    t = Table(title="Pseudo-resistance workup", title_justify="left", padding=(0, 1))
    t.add_column("cause", overflow="fold", max_width=22)
    t.add_column("status", no_wrap=True)
    t.add_column("finding / what to do", overflow="fold")
    order = {"abnormal": 0, "missing": 1, "done": 2, "normal": 3}
    for w in sorted(a.workup, key=lambda w: (order[w.status], w.id)):
        text = w.finding + (f" → {w.suggestion}" if w.suggestion else "")
        t.add_row(
            w.cause + ("" if w.verified else " (unverified)"),
            w.status.upper() if w.status == "abnormal" else w.status,
            text,
            style="bold" if w.status == "abnormal" else None,
        )
    extra = Text()
    if "workup" in a.verification:
        extra.append(f"  {a.verification['workup'].line}\n", style="dim")
    for p in a.pgx:
        extra.append(
            f"  PGx {p.gene} {p.phenotype} · {p.drug_name} ({p.context}): {p.recommendation}"
            f" [{p.strength}] ({', '.join(p.citations)})\n",
            style="dim" if p.verified else "",
        )
    return Group(t, extra)


def _schedule(a: Assessment) -> Table:
    t = Table(title="Measurements due", title_justify="left", padding=(0, 1))
    t.add_column("status", no_wrap=True)
    t.add_column("instrument", overflow="fold")
    t.add_column("due", no_wrap=True)
    t.add_column("last done", no_wrap=True)
    t.add_column("why", overflow="fold")
    for d in a.schedule:
        t.add_row(
            d.status.replace("_", " ").upper()
            if d.status == "overdue"
            else d.status.replace("_", " "),
            d.instrument,
            d.due_on.isoformat() if d.due_on else "each session",
            d.last_done.isoformat() if d.last_done else "–",
            d.label + f" — {d.reason}" + ("" if d.verified else " (unverified)"),
            style="bold red" if d.status == "overdue" else None,
        )
    return t


def render_assessment(a: Assessment) -> RenderableType:
    head = Text()
    head.append(f"Patient {a.patient_id}", style="bold")
    head.append(f" · assessed as of {a.assessed_on.isoformat()} · knowledge base {a.kb_version}\n")
    style = {"trd": "bold red", "indeterminate": "bold yellow"}.get(a.trd.status, "bold green")
    head.append(STATUS_TEXT[a.trd.status], style=style)
    head.append(f" — {a.trd.failed_adequate_trials} failed adequate antidepressant trial(s)")
    if a.trd.flags:
        head.append("\nflags: " + ", ".join(a.trd.flags), style="bold")
    for e in a.trd.explanations:
        head.append(f"\n• {e.message}")
        if e.citations:
            head.append(f" ({', '.join(e.citations)})", style="dim")
    for note in a.input_notes:
        head.append(f"\nread: {note}", style="yellow")
    parts: list[RenderableType] = [head, _trials(a), _why(a)]
    others = [al for al in a.alerts if al.code != "suicide_risk"]
    if others:
        parts.insert(1, _other_alerts(others))
    suicide_first = any(al.code == "suicide_risk" for al in a.alerts)
    if suicide_first:
        parts.insert(0, _alerts(a))
    if a.options:
        parts.append(plan_context_text(a))
        parts.append(_next_steps(a))
    if a.workup:
        parts.append(_workup(a))
    if a.other_treatments:
        o = Table(title="Other treatments", title_justify="left")
        for col in ("#", "type", "dates", "details", "outcome"):
            o.add_column(col)
        for x in a.other_treatments:
            o.add_row(
                str(x.index),
                x.type,
                f"{x.start.isoformat()} – {x.stop.isoformat() if x.stop else 'ongoing'}",
                x.detail,
                x.outcome.replace("_", " "),
            )
        parts.append(o)
    parts.append(_staging(a))
    if a.measurements:
        parts.append(_measurements(a))
    if a.schedule:
        parts.append(_schedule(a))
    refs = Text("Sources\n", style="bold")
    for key, text in a.citations.items():
        refs.append(f"  [{key}] ", style="bold")
        refs.append(f"{text}\n")
    parts.append(refs)
    parts.append(Text(a.disclaimer, style="italic"))
    rule = Rule(f"TRD Navigator — {a.patient_id}", align="left")
    if suicide_first:  # the suicide-risk banner comes before everything, even the title rule
        return Group(parts[0], rule, *parts[1:])
    return Group(rule, *parts)


def render_workup(a: Assessment) -> RenderableType:
    """The workup on its own (``trdnav workup``), under the same safety banner as the report."""
    parts: list[RenderableType] = [Rule(f"TRD Navigator workup — {a.patient_id}", align="left")]
    others = [al for al in a.alerts if al.code != "suicide_risk"]
    if others:
        parts.append(_other_alerts(others))
    parts.append(_workup(a))
    parts.append(Text(a.disclaimer, style="italic"))
    if any(al.code == "suicide_risk" for al in a.alerts):
        parts.insert(0, _alerts(a))
    return Group(*parts)


STATUS_STYLE = {
    "recommended": "bold green",
    "consider": "",
    "caution": "bold yellow",
    "not_indicated_now": "dim",
    "already_tried": "dim italic",
    "contraindicated": "bold red",
}
STATUS_LABEL = {
    "recommended": "recommended",
    "consider": "consider",
    "caution": "caution",
    "not_indicated_now": "not indicated now",
    "already_tried": "already tried",
    "contraindicated": "contraindicated",
}


def _ongoing_line(o: OngoingTreatment) -> str:
    dose = f" {o.mg_per_day:g} mg/day" if o.mg_per_day is not None else ""
    at = (
        f", {o.weeks_at_adequate_dose:g} at an adequate dose"
        if o.weeks_at_adequate_dose is not None
        else ""
    )
    kind = "" if o.kind in ("antidepressant", o.name) else f" ({o.kind})"
    return f"{o.name}{kind}{dose} since {o.since.isoformat()} ({o.weeks_on:g} weeks{at})"


def plan_context_text(a: Assessment) -> Text:
    """Where the patient is now: shown first in every plan."""
    s = a.plan_context
    t = Text("Where the patient is now: ", style="bold")
    if s is None:
        return t.append("not derived\n")
    t.append(s.label, style="bold cyan")
    if s.drug:
        t.append(f" — {s.drug}")
    t.append("\n")
    if s.ladder:
        t.append(f"  {s.ladder}\n", style="bold magenta")
    for o in s.ongoing:
        t.append(f"  ongoing: {_ongoing_line(o)}\n")
    if s.drug:
        t.append(f"  response: {s.response.replace('_', ' ')}")
        if s.response_detail:
            t.append(f" — {s.response_detail}")
        t.append("\n")
    for e in s.explanations:
        t.append(f"  • {e.message}", style="dim")
        if e.citations:
            t.append(f" ({', '.join(e.citations)})", style="dim")
        t.append("\n")
    return t


def _next_steps(a: Assessment, limit: int = 5) -> Text:
    t = Text("Next steps (top of the plan; `trdnav plan` explains all)\n", style="bold")
    for o in a.options[:limit]:
        t.append(f"  {o.rank}. {o.name} — ", style="bold")
        t.append(STATUS_LABEL[o.status], style=STATUS_STYLE[o.status])
        t.append(f" · {o.line}\n", style="dim")
    unsafe = [o.name for o in a.options if o.status == "contraindicated"]
    if unsafe:
        t.append("  contraindicated for this patient: " + ", ".join(unsafe) + "\n", style="red")
    return t


def _plan_list(a: Assessment) -> Text:
    """One block per option: rank, name, status; then its line, reasons and evidence."""
    t = Text("Ranked options\n", style="bold")
    if "plan" in a.verification:
        t.append(f"  {a.verification['plan'].line}\n", style="dim")
    for o in a.options:
        name = o.name + (" (investigational)" if o.investigational else "")
        name += " (specialist)" if o.specialist else ""
        t.append(f"\n{o.rank:>2}. {name} — ", style="bold")
        t.append(STATUS_LABEL[o.status].upper(), style=STATUS_STYLE[o.status])
        grade = f" · evidence: {o.evidence_grade}" if o.evidence_grade else ""
        t.append(f"\n    {o.line}{grade}\n", style="dim")
        for r in o.reasons:
            t.append(f"    • {r}\n")
        if o.drugs:
            t.append(f"    drugs: {', '.join(o.drugs)}\n")
        for e in o.evidence[:2]:
            mark = "" if e.verified else " (unverified)"
            t.append(f"    ◦ {e.figure} — {e.study} [{e.citation_key}]{mark}\n", style="dim")
    return t


def _findings(a: Assessment) -> Text:
    t = Text("Current regimen\n", style="bold")
    for f in a.safety:
        t.append(
            f"  ! [{f.severity}] {f.code}: {f.message}", style=STATUS_STYLE.get(f.severity, "")
        )
        t.append(f" ({', '.join(f.citations)})\n", style="dim")
    return t


def render_plan(a: Assessment, patient: bool = False) -> RenderableType:
    """``trdnav plan``: alerts, the ranked options (or plain summaries with ``patient``)."""
    parts: list[RenderableType] = [Rule(f"TRD Navigator plan — {a.patient_id}", align="left")]
    head = Text()
    style = {"trd": "bold red", "indeterminate": "bold yellow"}.get(a.trd.status, "bold green")
    head.append(STATUS_TEXT[a.trd.status], style=style)
    head.append(f" — {a.trd.failed_adequate_trials} failed adequate antidepressant trial(s)")
    parts.append(head)
    parts.append(plan_context_text(a))
    others = [al for al in a.alerts if al.code != "suicide_risk"]
    if others:
        parts.append(_other_alerts(others))
    if a.safety:
        parts.append(_findings(a))
    if patient:
        body = Text("Options to talk about with your care team\n", style="bold")
        for o in a.options:
            if o.status == "contraindicated":
                continue
            body.append(f"\n{o.name}\n", style="bold")
            body.append(o.summary_plain + "\n")
        body.append(
            "\nThese are options to discuss, not promises: results differ from person to person.\n"
        )
        parts.append(body)
    else:
        parts.append(_plan_list(a))
    parts.append(Text(a.disclaimer, style="italic"))
    if any(al.code == "suicide_risk" for al in a.alerts):
        parts.insert(0, _alerts(a))
    return Group(*parts)
