"""The course summary: one self-contained HTML document (for print or PDF) about one course.

Who the patient is, suicide-risk alerts first, the protocol (label status, off-label, verified),
the eligibility review (findings shown, contraindications overridden with the written reason and
who, cautions acknowledged, consent), the schedule against the sessions delivered, a row per
session (dose and route, the weight used and the formula for a weight-based dose, vitals before
and the highest after, CADSS and MOAA/S, adverse events, observation, discharge, transport, the
threshold findings, deferrals and overrides; rTMS and ECT parameters), the chart
(:mod:`trdnav.reports.course_chart`), the outcome (baseline → latest, % change, response and
remission by the instrument's knowledge-base thresholds), the integration, coaching and
follow-up notes, the plan after the course, the numbered sources and the disclaimer.

Pure: the schedule and the threshold evaluations are the course engine's
(:func:`trdnav.core.courses.schedule.planned_sessions`,
:func:`trdnav.core.courses.thresholds.evaluate_session`), passed in or computed here; nothing
clinical is decided in this module. The treatment summary's template environment and stylesheet
(:mod:`trdnav.reports.summary`) are reused, with ``templates/course_summary.css`` added.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from trdnav.core.assessment import Assessment
from trdnav.core.courses.model import Course, CourseNote, Override, SessionRecord, Vitals
from trdnav.core.courses.results import (
    CourseFinding,
    EligibilityDecision,
    PlannedSession,
    SessionEvaluation,
)
from trdnav.core.history import History
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.reports.course_chart import CourseScores, _engine, choose_instrument, course_scores
from trdnav.reports.course_doc import Refs, render_document
from trdnav.reports.pdf import render_pdf
from trdnav.reports.summary import _age, _inline_svg, _words

TREATMENT_NAMES = {
    "esketamine": "Esketamine (intranasal)",
    "ketamine": "Ketamine",
    "rtms": "rTMS",
    "ect": "ECT",
}
STATUS_NAMES = {
    "done": "given",
    "deferred": "deferred",
    "missed": "missed",
    "cancelled": "cancelled",
}
NOTE_KINDS = {
    "integration": "Integration",
    "health_coaching": "Health coaching",
    "follow_up": "Follow-up",
    "review": "Review",
    "other": "Other",
}
PLAN_NAMES = {
    "maintenance": "maintenance",
    "taper": "taper",
    "stop": "stop",
    "undecided": "not yet decided",
}
ELECTRODES = {"rul": "right unilateral", "bitemporal": "bitemporal", "bifrontal": "bifrontal"}


def _get(obj: object, *names: str, default: Any = None) -> Any:
    """The first of ``names`` that ``obj`` has (the protocol schema is knowledge, read loosely so
    that a clinic template with fewer fields still prints)."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


@dataclass(frozen=True)
class ProtocolView:
    name: str
    label_status: str | None
    off_label: bool
    verified: bool
    cites: tuple[str, ...]
    phases: tuple[str, ...]
    note: str | None


def _protocol_view(protocol: object, course: Course) -> ProtocolView:
    status = _get(protocol, "label_status", "regulatory_status", "status")
    off_label = bool(_get(protocol, "off_label", default=False)) or (
        isinstance(status, str) and "off" in status.lower()
    )
    phases = []
    for ph in _get(protocol, "phases", default=()) or ():
        label = _get(ph, "name", "label", "id", default="phase")
        detail = _get(ph, "description", "summary", "note")
        phases.append(f"{label}: {detail}" if detail else str(label))
    return ProtocolView(
        name=str(_get(protocol, "name", "label", "id", default=course.protocol_id)),
        label_status=_words(str(status)) if status is not None else None,
        off_label=off_label,
        verified=bool(_get(protocol, "verified", default=False)),
        cites=tuple(_get(protocol, "source", "citations", default=()) or ()),
        phases=tuple(phases),
        note=_get(protocol, "note"),
    )


def _num(x: float | None, unit: str = "") -> str:
    return "–" if x is None else f"{x:g}{unit}"


def _vitals(v: Vitals | None) -> tuple[str, str]:
    """(blood pressure, heart rate and SpO2) of one reading."""
    if v is None:
        return "not recorded", ""
    spo2 = f" · SpO2 {v.spo2} %" if v.spo2 is not None else ""
    return f"{v.systolic}/{v.diastolic}", f"HR {v.heart_rate}{spo2}"


def _post_max(vs: Sequence[Vitals]) -> tuple[str, str]:
    """(the highest systolic/diastolic after the dose, when and how many readings)."""
    if not vs:
        return "not recorded", ""
    top = max(vs, key=lambda v: (v.systolic, v.diastolic))
    at = f"at {top.minutes_after_dose} min · " if top.minutes_after_dose is not None else ""
    dia = max(v.diastolic for v in vs)
    return f"{top.systolic}/{dia}", f"{at}{len(vs)} reading{'s' if len(vs) != 1 else ''}"


def _scales(r: SessionRecord) -> tuple[str, ...]:
    parts = []
    for s in r.scales:
        at = f" ({s.minutes_after_dose} min)" if s.minutes_after_dose is not None else ""
        parts.append(f"{s.instrument} {s.total:g}{at}")
    return tuple(parts) or ("–",)


def _observed(r: SessionRecord, ev: SessionEvaluation | None) -> str:
    text = "–"
    if r.observed_until is not None and r.dose_time is not None:
        minutes = int((r.observed_until - r.dose_time).total_seconds() // 60)
        text = f"{minutes} min"
    elif r.observed_until is not None:
        text = f"until {r.observed_until.strftime('%H:%M')}"
    if ev is not None and ev.observation_minutes_required is not None:
        text += f" (required {ev.observation_minutes_required} min)"
    return text


def _discharge(r: SessionRecord) -> str:
    if not r.discharge_criteria_met:
        return "not recorded" if r.status == "done" else "–"
    unmet = [_words(k) for k, ok in sorted(r.discharge_criteria_met.items()) if not ok]
    if unmet:
        return "not met: " + ", ".join(unmet)
    return "criteria met: " + ", ".join(_words(k) for k in sorted(r.discharge_criteria_met))


def _device_params(r: SessionRecord) -> str:
    """rTMS and ECT parameters, in words."""
    parts = []
    if r.motor_threshold_pct is not None:
        parts.append(f"motor threshold {r.motor_threshold_pct:g} % of stimulator output")
    if r.intensity_pct_mt is not None:
        parts.append(f"intensity {r.intensity_pct_mt:g} % MT")
    if r.coil_site:
        parts.append(f"coil site {r.coil_site}")
    if r.pulses is not None:
        parts.append(f"{r.pulses} pulses")
    if r.electrode_placement:
        parts.append(f"placement {ELECTRODES[r.electrode_placement]}")
    if r.stimulus_dose_mc is not None:
        parts.append(f"stimulus {r.stimulus_dose_mc:g} mC")
    if r.seizure_seconds is not None:
        parts.append(f"seizure {r.seizure_seconds:g} s")
    if r.anaesthesia:
        parts.append(f"anaesthesia {r.anaesthesia}")
    if r.reorientation_minutes is not None:
        parts.append(f"reorientation {r.reorientation_minutes:g} min")
    if r.cognitive_check:
        parts.append(f"cognitive check: {r.cognitive_check}")
    return "; ".join(parts)


@dataclass(frozen=True)
class SessionRow:
    number: int
    on: date
    status: str
    status_key: str
    dose: str
    dose_formula: str | None
    pre: tuple[str, str]
    post: tuple[str, str]
    scales: tuple[str, ...]
    adverse: str
    observed: str
    discharge: str
    transport: str | None
    params: str
    checks: str
    findings: tuple[CourseFinding, ...]
    overrides: tuple[Override, ...]
    note: str | None
    recorded_by: str | None
    deferred: bool


def _session_row(r: SessionRecord, ev: SessionEvaluation | None, course: Course) -> SessionRow:
    dose = "–"
    if r.dose_mg is not None:
        dose = f"{r.dose_mg:g} mg" + (f" {r.route}" if r.route else "")
    elif r.status == "done" and r.route:
        dose = r.route
    formula = ev.dose.formula if ev is not None and ev.dose is not None else None
    weight = r.weight_kg if r.weight_kg is not None else None
    if formula is None and weight is not None:
        formula = f"weight used {weight:g} kg"
    elif formula is not None and weight is not None and f"{weight:g}" not in formula:
        formula += f" (weight used {weight:g} kg)"
    checks = ", ".join(
        f"{_words(k)}: {'yes' if v else 'no'}" for k, v in sorted(r.pre_checks.items())
    )
    return SessionRow(
        number=r.number,
        on=r.on,
        status=STATUS_NAMES[r.status],
        status_key=r.status,
        dose=dose,
        dose_formula=formula,
        pre=_vitals(r.pre_vitals),
        post=_post_max(r.post_vitals) if r.status == "done" else ("–", ""),
        scales=_scales(r),
        adverse="; ".join(f"{a.term} ({a.severity})" for a in r.adverse_events) or "none",
        observed=_observed(r, ev),
        discharge=_discharge(r),
        transport=r.transport,
        params=_device_params(r),
        checks=checks,
        findings=ev.findings if ev is not None else (),
        overrides=r.overrides,
        note=r.note,
        recorded_by=r.recorded_by,
        deferred=r.status == "deferred" or (ev is not None and ev.deferred),
    )


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    planned: int
    given: int
    first: date
    last: date


@dataclass(frozen=True)
class ScheduleView:
    planned: int
    counts: dict[str, int]  # status -> records
    not_recorded: tuple[PlannedSession, ...]
    phases: tuple[PhaseRow, ...]
    reviews: tuple[PlannedSession, ...]
    moved: tuple[PlannedSession, ...]


def _schedule(
    course: Course, planned: Sequence[PlannedSession], phase_names: dict[str, str]
) -> ScheduleView:
    fulfilled = {r.number for r in course.sessions if r.status != "deferred"}
    given = {r.number for r in course.sessions if r.status == "done"}
    counts = {k: sum(1 for r in course.sessions if r.status == k) for k in STATUS_NAMES}
    phases: list[PhaseRow] = []
    for p in sorted(planned, key=lambda p: p.number):
        name = phase_names.get(p.phase, _words(p.phase))
        if phases and phases[-1].phase == name:
            last = phases[-1]
            phases[-1] = PhaseRow(
                name, last.planned + 1, last.given + (p.number in given), last.first, p.on
            )
        else:
            phases.append(PhaseRow(name, 1, int(p.number in given), p.on, p.on))
    return ScheduleView(
        planned=len(planned),
        counts=counts,
        not_recorded=tuple(p for p in planned if p.number not in fulfilled),
        phases=tuple(phases),
        reviews=tuple(p for p in planned if p.review),
        moved=tuple(p for p in planned if p.moved_from is not None),
    )


@dataclass(frozen=True)
class OutcomeView:
    instrument: str
    baseline: str | None
    latest: str | None
    change: str | None
    response: str
    remission: str
    verified: bool
    cites: tuple[str, ...]


def _outcome(cs: CourseScores) -> OutcomeView:
    name = cs.instrument.name
    if cs.baseline is None:
        return OutcomeView(name, None, None, None, "–", "–", cs.verified, cs.citations)
    base = cs.baseline.score.total or 0.0
    later = [s for s in cs.scores if s is not cs.baseline]
    baseline = f"{base:g} on {cs.baseline.date.isoformat()}"
    if not later:
        return OutcomeView(name, baseline, None, None, "–", "–", cs.verified, cs.citations)
    last = later[-1]
    total = last.score.total or 0.0
    change = None if base == 0 else f"{(total - base) / base * 100:+.0f} %"

    def verdict(at: float | None, what: str) -> str:
        if at is None:
            return "not defined for this instrument"
        return f"{'yes' if total <= at else 'no'} ({what} ≤ {at:g})"

    return OutcomeView(
        instrument=name,
        baseline=baseline,
        latest=f"{total:g} on {last.date.isoformat()}",
        change=change,
        response=verdict(cs.response_at, "response"),
        remission=verdict(cs.remission_at, "remission"),
        verified=cs.verified,
        cites=cs.citations,
    )


def _notes(notes: Sequence[CourseNote]) -> list[tuple[str, list[CourseNote]]]:
    out = []
    for kind, label in NOTE_KINDS.items():
        own = sorted((n for n in notes if n.kind == kind), key=lambda n: n.on)
        if own:
            out.append((label, own))
    return out


def render_course_summary_html(
    course: Course,
    history: History,
    assessment: Assessment,
    kb: Knowledge,
    protocol: object,
    chart_svg: str | None,
    generated_on: date,
    clinic_name: str = "TRD Navigator",
    *,
    planned: Sequence[PlannedSession] | None = None,
    evaluate: Callable[[SessionRecord], SessionEvaluation] | None = None,
    eligibility: EligibilityDecision | None = None,
    instrument: str | None = None,
    identity: PatientIdentity | None = None,
) -> str:
    """The course summary of ``course`` as one HTML document (see the module docstring).
    ``identity`` (name, date of birth, MRN) heads it when given.

    ``planned`` is the schedule (default: :func:`trdnav.core.courses.schedule.planned_sessions`
    on a Monday-to-Friday calendar) and ``evaluate`` the threshold evaluation of a record
    (default: ``thresholds.evaluate_session(protocol, course, r)``); ``eligibility`` the
    engine's decision, printed when given. ``chart_svg`` is
    :func:`~trdnav.reports.course_chart.render_course_chart_svg`'s output or None. The output
    depends only on the arguments (``generated_on`` is printed, never read from a clock).
    """
    refs = Refs(kb)
    pv = _protocol_view(protocol, course)
    phase_names = {
        str(_get(ph, "id", default="")): str(_get(ph, "name", "label", "id", default=""))
        for ph in (_get(protocol, "phases", default=()) or ())
    }
    if planned is None:  # the engine's schedule, on the default calendar (Monday to Friday)
        schedule = _engine("schedule")
        calendar = schedule.ClinicCalendar(
            open_weekdays=frozenset(range(5)), closed_dates=frozenset()
        )
        planned = list(schedule.planned_sessions(protocol, course, calendar))
    if evaluate is None:
        thresholds = _engine("thresholds")

        def evaluate(r: SessionRecord) -> SessionEvaluation:
            result: SessionEvaluation = thresholds.evaluate_session(protocol, course, r)
            return result

    plan = list(planned)
    records = sorted(enumerate(course.sessions), key=lambda ir: (ir[1].on, ir[1].number, ir[0]))
    rows = [_session_row(r, evaluate(r), course) for _, r in records]
    inst = choose_instrument(history, kb, instrument)
    outcome = _outcome(course_scores(course, history, kb, inst, plan)) if inst else None
    suicide = [a for a in assessment.alerts if a.code == "suicide_risk"]
    patient = history.patient
    return render_document(
        "course_summary.html",
        generated_on,
        clinic_name,
        doc_title=f"{TREATMENT_NAMES.get(course.treatment, course.treatment)} course summary",
        app_version=assessment.app_version,
        kb_version=assessment.kb_version,
        disclaimer=assessment.disclaimer,
        course=course,
        patient=patient,
        identity=identity,
        age=_age(patient.birth_date, generated_on),
        sex=_words(patient.sex.value),
        p=pv,
        elig=course.eligibility,
        decision=eligibility,
        schedule=_schedule(course, plan, phase_names),
        rows=rows,
        chart_svg=_inline_svg(chart_svg),
        outcome=outcome,
        notes=_notes(course.notes),
        plan_after=PLAN_NAMES[course.plan_after],
        suicide_alerts=suicide,
        crisis=assessment.crisis_resources,
        refs=refs,
        words=_words,
        status_names=STATUS_NAMES,
    )


def render_course_summary_pdf(html: str) -> bytes:
    """The course summary document as PDF (:func:`trdnav.reports.pdf.render_pdf`)."""
    return render_pdf(html)
