"""Interventional course pages: start a course, its eligibility gate, the course, sessions.

Every page reads the course (audited) and shows what the course engine computed from it; every
form posts the course version it was opened at (409 when someone saved since, nothing stored)
and goes through :mod:`trdnav.web.course_ops`, so the pages and the API apply the same rules.
Invalid input re-shows the form with each problem next to its field and the values kept (422).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from trdnav.core.courses import dosing, schedule
from trdnav.core.courses.results import DoseCalculation
from trdnav.core.measures import score_measurements
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge
from trdnav.reports.outcomes import TREATMENT_NAMES, format_rate
from trdnav.storage import courses as store
from trdnav.storage import repository
from trdnav.web import course_forms, course_ops, course_reports
from trdnav.web.course_ops import Opened
from trdnav.web.deps import CurrentUser, KnowledgeDep, Reader, SessionDep, TodayDep, Writer
from trdnav.web.deps import client_ip as ip_of
from trdnav.web.pages import render
from trdnav.web.routes.records import Submitted

router = APIRouter(include_in_schema=False)

CourseId = Annotated[str, Path(max_length=64)]
Number = Annotated[int, Path(ge=1, le=10_000)]
NOTE_KINDS = (
    ("integration", "Integration session"),
    ("health_coaching", "Health coaching"),
    ("follow_up", "Follow-up"),
    ("review", "Response review"),
    ("other", "Other"),
)
PLANS = (
    ("undecided", "Undecided"),
    ("maintenance", "Maintenance"),
    ("taper", "Taper"),
    ("stop", "Stop"),
)


def course_url(course_id: str, tail: str = "") -> str:
    return "/courses/" + quote(course_id, safe="") + tail


def patient_url(patient_id: str) -> str:
    return "/patients/" + quote(patient_id, safe="")


def opened(
    db: Session, kb: Knowledge, course_id: str, user: CurrentUser, request: Request
) -> Opened:
    try:
        return course_ops.open_course(db, kb, course_id, user.who, ip_of(request))
    except store.CourseNotFoundError:
        raise HTTPException(404, "No such course.") from None


def version_of(values: dict[str, str]) -> int:
    raw = values.get("version", "")
    if not raw.isdigit():
        raise InputError([Problem("version", "missing", "the form's version is missing")])
    return int(raw)


def now() -> datetime:
    return datetime.now(UTC)


def protocol_choices(kb: Knowledge) -> list[Any]:
    return sorted(kb.protocols.values(), key=lambda p: (p.treatment, p.id))


# --- the patient's courses ----------------------------------------------------------------------


@router.get("/patients/{patient_id}/courses")
def patient_courses(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    """The patient's courses with their status (the patient page loads it into its section)."""
    if repository.patient_version(db, patient_id) is None:
        raise repository.PatientNotFoundError(patient_id)
    courses = store.list_courses(db, patient_id, user.who, ip_of(request))
    context = {"patient_id": patient_id, "courses": courses, "kb": kb}
    part = request.headers.get("hx-request") is not None
    template = "courses/_list.html" if part else "courses/list.html"
    return render(request, template, context, today=today)


def _start_page(
    request: Request,
    kb: Knowledge,
    patient_id: str,
    values: dict[str, str],
    errors: dict[str, str],
    top: list[str],
    today: date,
    status: int = 200,
) -> Response:
    context = {
        "patient_id": patient_id,
        "protocols": protocol_choices(kb),
        "values": values,
        "errors": errors,
        "top": top,
        "base": patient_url(patient_id),
    }
    return render(request, "courses/start.html", context, status_code=status, today=today)


@router.get("/patients/{patient_id}/courses/new")
def start_course_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    protocol: Annotated[str, Query(max_length=120)] = "",
) -> Response:
    if repository.patient_version(db, patient_id) is None:
        raise repository.PatientNotFoundError(patient_id)
    repository.record_audit(db, user.who, "read", "patient", patient_id, ip_of(request))
    db.commit()
    values = {"start": today.isoformat(), "protocol_id": protocol}
    return _start_page(request, kb, patient_id, values, {}, [], today)


@router.post("/patients/{patient_id}/courses/new")
def start_course(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    try:
        course, _v = course_ops.create(db, kb, patient_id, values, user.who, ip_of(request))
    except InputError as exc:
        errors, top = course_forms.errors_of(exc)
        return _start_page(request, kb, patient_id, values, errors, top, today, 422)
    return RedirectResponse(course_url(course.id, "/eligibility"), status_code=303)


# --- the clinic's outcomes ----------------------------------------------------------------------


@router.get("/courses/outcomes")
def clinic_outcomes_page(
    request: Request, db: SessionDep, kb: KnowledgeDep, user: Reader, today: TodayDep
) -> Response:
    rates = course_reports.clinic_rates(db, kb, today, user.who, ip_of(request))
    context = {"rates": rates, "fmt": format_rate, "names": TREATMENT_NAMES}
    return render(request, "courses/outcomes.html", context, today=today)


# --- eligibility --------------------------------------------------------------------------------


def _gate_page(
    request: Request,
    db: Session,
    kb: Knowledge,
    o: Opened,
    user: CurrentUser,
    today: date,
    errors: dict[str, str] | None = None,
    top: list[str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    findings = course_ops.findings_for(db, kb, o, today, user.who, ip_of(request))
    decision = course_ops.decide(o, findings)
    e = o.course.eligibility
    overridden = {ov.code: ov for ov in (e.overrides if e else ())}
    acked = {a.code: a for a in (e.acknowledged if e else ())}
    context = {
        "course": o.course,
        "version": o.version,
        "protocol": o.protocol,
        "findings": findings,
        "contraindications": [f for f in findings if f.severity == "contraindicated"],
        "cautions": [f for f in findings if f.severity == "caution"],
        "infos": [f for f in findings if f.severity == "info"],
        "overridden": overridden,
        "acked": acked,
        "decision": decision,
        "errors": errors or {},
        "top": top or [],
        "values": values or {},
        "kb": kb,
        "course_identity": o.identity,
    }
    return render(request, "courses/eligibility.html", context, status_code=status, today=today)


@router.get("/courses/{course_id}/eligibility")
def eligibility_page(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    return _gate_page(request, db, kb, o, user, today)


def _gate_action(
    request: Request,
    course_id: str,
    db: Session,
    kb: Knowledge,
    user: CurrentUser,
    today: date,
    action: str,
    values: dict[str, str],
    acks: tuple[str, ...] = (),
) -> Response:
    o = opened(db, kb, course_id, user, request)
    ip = ip_of(request)
    try:
        version = version_of(values)
        if version != o.version:
            raise repository.StaleRecordError(course_id, version, o.version)
        findings = course_ops.findings_for(db, kb, o, today, user.who, ip)
        if action == "review":
            course_ops.review(db, o, findings, list(acks), values, user.who, now(), ip)
        elif action == "override":
            code, reason = values.get("code", ""), values.get("reason", "")
            course_ops.override(db, o, findings, code, reason, user.who, now(), ip)
        else:
            course_ops.start(db, o, findings, user.who, ip)
    except InputError as exc:
        errors, top = course_forms.errors_of(exc)
        return _gate_page(request, db, kb, o, user, today, errors, top, values, 422)
    target = course_url(course_id) if action == "start" else course_url(course_id, "/eligibility")
    return RedirectResponse(target, status_code=303)


async def acknowledged(request: Request) -> tuple[str, ...]:
    """The findings ticked as reviewed (the form's repeated ``ack`` field)."""
    form = await request.form()
    return tuple(str(v) for v in form.getlist("ack"))


Acknowledged = Annotated[tuple[str, ...], Depends(acknowledged)]


@router.post("/courses/{course_id}/eligibility")
def review_eligibility(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
    acks: Acknowledged,
) -> Response:
    return _gate_action(request, course_id, db, kb, user, today, "review", values, acks)


@router.post("/courses/{course_id}/overrides")
def override_contraindication(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    return _gate_action(request, course_id, db, kb, user, today, "override", values)


@router.post("/courses/{course_id}/start")
def start_active(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    return _gate_action(request, course_id, db, kb, user, today, "start", values)


# --- the course page ----------------------------------------------------------------------------


def measured_dates(
    db: Session, kb: Knowledge, patient_id: str, user: str, ip: str | None
) -> dict[str, set[date]]:
    """Instrument id -> the dates the patient has a score of it (an audited read of the record)."""
    history = repository.load_history(db, patient_id, user, ip)
    out: dict[str, set[date]] = {}
    for s in score_measurements(history, kb):
        out.setdefault(s.instrument_id, set()).add(s.date)
    return out


def course_context(
    o: Opened, kb: Knowledge, today: date, measured: dict[str, set[date]] | None = None
) -> dict[str, Any]:
    course, protocol = o.course, o.protocol
    cal = course_reports.calendar()
    planned = schedule.planned_sessions(protocol, course, cal)
    recorded: dict[int, list[Any]] = {}
    for s in course.sessions:
        recorded.setdefault(s.number, []).append(s)
    return {
        "course": course,
        "version": o.version,
        "protocol": protocol,
        "planned": planned,
        "recorded": recorded,
        "tasks": schedule.course_tasks(protocol, course, cal, today, measured),
        "phase_names": {ph.id: ph.name for ph in protocol.phases},
        "note_kinds": NOTE_KINDS,
        "plans": PLANS,
        "kb": kb,
        "course_identity": o.identity,
    }


def _course_page(
    request: Request,
    db: Session,
    user: CurrentUser,
    o: Opened,
    kb: Knowledge,
    today: date,
    errors: dict[str, str] | None = None,
    top: list[str] | None = None,
    status: int = 200,
) -> Response:
    measured = measured_dates(db, kb, o.course.patient_id, user.who, ip_of(request))
    context = course_context(o, kb, today, measured)
    context.update({"errors": errors or {}, "top": top or [], "values": {}})
    return render(request, "courses/page.html", context, status_code=status, today=today)


@router.get("/courses/{course_id}")
def course_page(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    return _course_page(request, db, user, opened(db, kb, course_id, user, request), kb, today)


def _course_action(
    request: Request,
    course_id: str,
    db: Session,
    kb: Knowledge,
    user: CurrentUser,
    today: date,
    action: str,
    values: dict[str, str],
    number: int | None = None,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    ip = ip_of(request)
    try:
        version = version_of(values)
        if version != o.version:
            raise repository.StaleRecordError(course_id, version, o.version)
        if action == "note":
            course_ops.add_note(db, o, values, user.who, ip)
        elif action == "plan":
            course_ops.set_plan(db, o, values, user.who, ip)
        elif number is not None:
            on = course_ops.validated(_DateIn, {"on": values.get("on") or None}).on
            if action == "reschedule":
                course_ops.reschedule(db, o, number, on, user.who, ip)
            else:
                course_ops.mark_missed(db, o, number, on, user.who, ip)
    except InputError as exc:
        errors, top = course_forms.errors_of(exc)
        return _course_page(request, db, user, o, kb, today, errors, top, 422)
    return RedirectResponse(course_url(course_id, "#" + action), status_code=303)


class _DateIn(BaseModel):
    on: date


@router.post("/courses/{course_id}/notes")
def add_course_note(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    return _course_action(request, course_id, db, kb, user, today, "note", values)


@router.post("/courses/{course_id}/plan")
def set_course_plan(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    return _course_action(request, course_id, db, kb, user, today, "plan", values)


@router.post("/courses/{course_id}/sessions/{number}/reschedule")
def reschedule_session(
    request: Request,
    course_id: CourseId,
    number: Number,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    return _course_action(request, course_id, db, kb, user, today, "reschedule", values, number)


@router.post("/courses/{course_id}/sessions/{number}/missed")
def mark_session_missed(
    request: Request,
    course_id: CourseId,
    number: Number,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    return _course_action(request, course_id, db, kb, user, today, "missed", values, number)


# --- sessions -----------------------------------------------------------------------------------


def dose_preview(o: Opened, number: int, values: dict[str, str]) -> DoseCalculation | None:
    """The engine's weight-based dose of this session for the weight on the form (or the
    course's), shown before the dose is given; None when the phase's dose is not by weight."""
    phase = schedule.phase_of(o.protocol, o.course, number)
    dose = phase.dose if phase is not None else None
    if dose is None or dose.mg_per_kg is None:
        return None
    try:
        weight = float(values.get("weight_kg") or "") if values.get("weight_kg") else None
    except ValueError:
        weight = None
    try:
        return dosing.weight_based_dose(dose.mg_per_kg, weight or o.course.weight_kg, dose.max_mg)
    except InputError:
        return None


def _session_page(
    request: Request,
    o: Opened,
    kb: Knowledge,
    today: date,
    number: int,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    top: list[str] | None = None,
    result: course_ops.Recorded | None = None,
    status: int = 200,
) -> Response:
    planned = {
        p.number: p
        for p in schedule.planned_sessions(o.protocol, o.course, course_reports.calendar())
    }
    context = {
        "course": o.course,
        "version": o.version,
        "protocol": o.protocol,
        "number": number,
        "planned": planned.get(number),
        "dose": dose_preview(o, number, values),
        "route_options": [(r, r.replace("_", " ")) for r in o.protocol.routes],
        "values": values,
        "errors": errors or {},
        "top": top or [],
        "result": result,
        "kb": kb,
        "course_identity": o.identity,
    }
    return render(request, "courses/session.html", context, status_code=status, today=today)


@router.get("/courses/{course_id}/sessions/new")
def session_form(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    number: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    planned = {
        p.number: p
        for p in schedule.planned_sessions(o.protocol, o.course, course_reports.calendar())
    }
    p = planned.get(number)
    values = {
        "number": str(number),
        "on": (p.on if p is not None else today).isoformat(),
        "weight_kg": f"{o.course.weight_kg:g}" if o.course.weight_kg else "",
    }
    if len(o.protocol.routes) == 1:
        values["route"] = o.protocol.routes[0]
    for i, what in enumerate(("cadss", "moaas")):  # the scales' rows of the form
        at = next((c.minutes for c in o.protocol.post_dose_checks if c.what == what), None)
        if at is not None:
            values[f"scales.{i}.minutes_after_dose"] = str(at)
    return _session_page(request, o, kb, today, number, values)


@router.post("/courses/{course_id}/sessions")
def record_session(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    values: Submitted,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    number = int(values["number"]) if values.get("number", "").isdigit() else 1
    try:
        version = version_of(values)
        if version != o.version:
            raise repository.StaleRecordError(course_id, version, o.version)
        data = course_forms.session_data(values)
        result = course_ops.record_session(
            db, o, data, user.who, now(), values.get("override_reason", ""), ip_of(request)
        )
    except InputError as exc:
        errors, top = course_forms.errors_of(exc)
        return _session_page(request, o, kb, today, number, values, errors, top, status=422)
    after = Opened(result.course, result.version, o.protocol)
    return _session_page(request, after, kb, today, number, values, result=result)


# --- documents ----------------------------------------------------------------------------------


@router.get("/courses/{course_id}/chart.svg")
def course_chart(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    svg = course_reports.chart_svg(db, kb, o, today, user.who, ip_of(request))
    if svg is None:
        return Response(status_code=204)
    return Response(svg, media_type="image/svg+xml")


@router.get("/courses/{course_id}/summary.pdf")
def course_summary_pdf(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    pdf = course_reports.summary_pdf(
        db, kb, o, today, request.app.state.settings.clinic_name, user.who
    )
    headers = {"Content-Disposition": f'inline; filename="course-{o.course.id}.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.get("/courses/{course_id}/rems.csv")
def course_rems(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    o = opened(db, kb, course_id, user, request)
    if o.course.treatment != "esketamine":
        raise HTTPException(404, "REMS monitoring data exist for esketamine courses only.")
    headers = {"Content-Disposition": f'attachment; filename="rems-{o.course.id}.csv"'}
    return Response(
        course_reports.rems_csv(o), media_type="text/csv; charset=utf-8", headers=headers
    )
