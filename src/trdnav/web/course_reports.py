"""The course documents for the pages, the API and the CLI: each is the reports' own function
(:mod:`trdnav.reports`) fed with what the store and the course engine give; nothing is drawn or
computed here."""

from __future__ import annotations

import os
from datetime import date

from sqlalchemy.orm import Session

from trdnav.core.courses import rems, schedule
from trdnav.core.courses.outcomes import CourseResult, clinic_outcomes
from trdnav.core.courses.results import OutcomeRate
from trdnav.core.history import History
from trdnav.knowledge.load import Knowledge
from trdnav.reports import rems as rems_report
from trdnav.reports.course_chart import choose_instrument, course_scores, render_course_chart_svg
from trdnav.storage import courses as store
from trdnav.storage import repository
from trdnav.web.course_ops import Opened

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_calendar(open_days: str, closed_dates: str) -> schedule.ClinicCalendar:
    """``"mon,tue,wed,thu,fri"`` and ``"2024-12-25,2025-01-01"``; ValueError names the setting."""
    days = [d.strip().lower()[:3] for d in open_days.split(",") if d.strip()]
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown or not days:
        raise ValueError(
            "TRDNAV_CLINIC_OPEN_DAYS: expected weekday names such as mon,tue,wed,thu,fri, "
            f"got {open_days!r}"
        )
    closed: set[date] = set()
    for text in (t.strip() for t in closed_dates.split(",")):
        if not text:
            continue
        try:
            closed.add(date.fromisoformat(text))
        except ValueError:
            raise ValueError(
                f"TRDNAV_CLINIC_CLOSED_DATES: expected YYYY-MM-DD dates, got {text!r}"
            ) from None
    return schedule.ClinicCalendar(
        open_weekdays=frozenset(WEEKDAYS.index(d) for d in days), closed_dates=frozenset(closed)
    )


def calendar() -> schedule.ClinicCalendar:
    """The clinic's calendar: ``TRDNAV_CLINIC_OPEN_DAYS`` (default Monday to Friday) and
    ``TRDNAV_CLINIC_CLOSED_DATES`` (holidays, comma-separated ISO dates)."""
    return parse_calendar(
        os.environ.get("TRDNAV_CLINIC_OPEN_DAYS", "mon,tue,wed,thu,fri"),
        os.environ.get("TRDNAV_CLINIC_CLOSED_DATES", ""),
    )


def chart_svg(
    db: Session, kb: Knowledge, o: Opened, today: date, user: str, ip: str | None = None
) -> str | None:
    """The per-course chart, or None when the patient has no scores to draw."""
    history = repository.load_history(db, o.course.patient_id, user, ip)
    try:
        return render_course_chart_svg(o.course, history, kb, o.protocol, calendar())
    except ValueError:
        return None


def rems_csv(o: Opened) -> str:
    return rems_report.rems_csv(rems.rems_rows(o.protocol, o.course))


def summary_html(
    db: Session, kb: Knowledge, o: Opened, today: date, clinic_name: str, user: str
) -> str:
    """The course summary document (the reports' own), as of ``today``."""
    from trdnav.core.courses import thresholds
    from trdnav.reports.course_summary import render_course_summary_html
    from trdnav.storage import records
    from trdnav.web import course_ops

    history = repository.load_history(db, o.course.patient_id, user)
    assessment = records.assess_as_of(history, kb, today)
    planned = schedule.planned_sessions(o.protocol, o.course, calendar())
    findings = course_ops.findings_for(db, kb, o, today, user)
    return render_course_summary_html(
        o.course,
        history,
        assessment,
        kb,
        o.protocol,
        chart_svg(db, kb, o, today, user),
        today,
        clinic_name,
        planned=planned,
        evaluate=lambda r: thresholds.evaluate_session(o.protocol, o.course, r),
        eligibility=course_ops.decide(o, findings),
        identity=o.identity,
    )


def summary_pdf(
    db: Session, kb: Knowledge, o: Opened, today: date, clinic_name: str, user: str
) -> bytes:
    from trdnav.web.pdf_processes import render_pdf_in_child

    return render_pdf_in_child(summary_html(db, kb, o, today, clinic_name, user))


def clinic_rates(
    db: Session, kb: Knowledge, today: date, user: str, ip: str | None = None
) -> list[OutcomeRate]:
    """Response and remission by treatment over the clinic's courses (the engine's rates).

    A course counts once a session has been given; its baseline and last score are the course
    chart's (:func:`~trdnav.reports.course_chart.course_scores`, the chart's instrument: PHQ-9
    first), so the page, the chart and the summary agree. ``today`` is not used yet: the rates
    are of everything recorded.
    """
    del today
    results: list[CourseResult] = []
    histories: dict[str, History] = {}
    for course in store.all_courses(db, user, ip):
        protocol = kb.protocols.get(course.protocol_id)
        if protocol is None or not any(s.status == "done" for s in course.sessions):
            continue
        history = histories.get(course.patient_id)
        if history is None:
            history = repository.load_history(db, course.patient_id, user, ip)
            histories[course.patient_id] = history
        inst = choose_instrument(history, kb)
        if inst is None:  # pragma: no cover - only for an unknown instrument name
            continue
        planned = schedule.planned_sessions(protocol, course, calendar())
        cs = course_scores(course, history, kb, inst, planned)
        base = cs.baseline
        later = [s for s in cs.scores if base is None or s.date > base.date]
        results.append(
            CourseResult(
                treatment=course.treatment,
                instrument=inst.id,
                baseline=base.score.total if base is not None else None,
                last=later[-1].score.total if later else None,
            )
        )
    return clinic_outcomes(results, kb)
