"""The course documents for the pages, the API and the CLI: each is the reports' own function
(:mod:`trdnav.reports`) fed with what the store and the course engine give; nothing is drawn or
computed here."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from trdnav.core.courses import rems, schedule
from trdnav.knowledge.load import Knowledge
from trdnav.reports import rems as rems_report
from trdnav.reports.course_chart import render_course_chart_svg
from trdnav.storage import repository
from trdnav.web.course_ops import Opened


def calendar() -> schedule.ClinicCalendar:
    """The clinic's calendar: open Monday to Friday (no closed dates configured yet)."""
    return schedule.ClinicCalendar(open_weekdays=frozenset(range(5)), closed_dates=frozenset())


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
    )


def summary_pdf(
    db: Session, kb: Knowledge, o: Opened, today: date, clinic_name: str, user: str
) -> bytes:
    from trdnav.reports.course_summary import render_course_summary_pdf

    return render_course_summary_pdf(summary_html(db, kb, o, today, clinic_name, user))
