"""The readable report of an assessment (Rich renderables; the CLI prints them)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.assessment import Assessment
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
        t.add_row(
            str(v.index),
            f"{v.drug}\n{v.drug_class.replace('_', ' ')}",
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


def _stage_line(s: StageResult) -> str:
    parts = []
    if s.label is not None:
        parts.append(s.label)
    if s.score is not None:
        parts.append(f"score {s.score:g}")
    if s.band is not None:
        parts.append(s.band)
    return " · ".join(parts) or "–"


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
        t.add_row(s.name, _stage_line(s), "\n".join(lines))
    foot = Text()
    for k, n in enumerate(notes, start=1):
        foot.append(f"  [{k}] {n}\n", style="dim")
    return Group(t, foot)


def _alerts(a: Assessment) -> Text:
    """The safety net: printed before anything else whenever there is an alert."""
    t = Text()
    worst = max((al.severity for al in a.alerts), key=SEVERITY_ORDER.index)
    t.append(
        f"⚠ SUICIDE RISK — {len(a.alerts)} alert(s), highest: {worst.upper()}\n",
        style="bold white on red",
    )
    for al in a.alerts:
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
    parts: list[RenderableType] = [head, _trials(a), _why(a)]
    if a.alerts:
        parts.insert(0, _alerts(a))
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
    if a.alerts:  # the alert banner comes before everything, even the title rule
        return Group(parts[0], rule, *parts[1:])
    return Group(rule, *parts)
