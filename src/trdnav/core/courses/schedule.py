"""The schedule of a course: planned sessions from the protocol's phases, and the course's tasks.

Rules (``docs/courses.md``):

- **Numbering.** Sessions are numbered 1.. through the phases in order. A phase whose
  ``missed_session`` rule is ``make_up_end_of_phase`` gets one extra session at its end for each of
  its sessions that was not given (last record ``missed`` or ``deferred`` with no ``done`` record
  for that number); a make-up that is itself not given is made up again. Later phases' numbers
  follow. ``cancelled`` sessions are not made up (the clinician shortened the course).
- **Dates.** A phase runs ``per_week`` treatment days a week, every ``every_weeks`` weeks, from its
  start (the course start; each later phase starts when the previous phase's weeks are over). Up
  to 3 days a week, day ``k`` of a week falls ``floor(k × 7 / per_week)`` days into it (twice
  weekly: days 0 and 3, e.g. Monday and Thursday; three times: 0, 2, 4); from 4 a week the days
  are consecutive (5 a week from a Monday: Monday to Friday). A day on which the clinic is
  closed moves to the next open day; consecutive treatment days of a schedule with at most 3
  days a week keep at least one day between them (2 days apart), others at least 1; several
  sessions a day share the day.
- **Rescheduling.** ``course.rescheduled[n]`` sets session ``n``'s date (it must be an open day
  after the previous session's date, or the same day when the phase has several a day); later
  sessions keep their own dates unless that would break the minimum gap, in which case they move.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from trdnav.core.courses.dosing import weight_based_dose
from trdnav.core.courses.model import Course, SessionRecord
from trdnav.core.courses.results import PlannedSession, Task
from trdnav.errors import InputError, Problem
from trdnav.knowledge.protocols import Phase, Protocol

NOT_GIVEN = frozenset({"missed", "deferred"})
_MAX_SEARCH_DAYS = 366


@dataclass(frozen=True)
class ClinicCalendar:
    """The clinic's open weekdays (0 = Monday) and closed dates (holidays)."""

    open_weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))
    closed_dates: frozenset[date] = frozenset()

    def is_open(self, day: date) -> bool:
        return day.weekday() in self.open_weekdays and day not in self.closed_dates

    def next_open(self, day: date) -> date:
        """``day`` if open, else the next open day."""
        for _ in range(_MAX_SEARCH_DAYS):
            if self.is_open(day):
                return day
            day += timedelta(days=1)
        raise InputError(
            [
                Problem(
                    "calendar", "calendar_closed", "the clinic calendar has no open day in a year"
                )
            ]
        )


def session_status(course: Course) -> dict[int, str]:
    """The effective status of each recorded number: ``done`` if any record is done, else the
    status of the last record."""
    out: dict[int, str] = {}
    for r in course.sessions:
        if out.get(r.number) != "done":
            out[r.number] = r.status
    return out


def records_by_number(course: Course) -> dict[int, SessionRecord]:
    """The effective record of each number (a done record wins, else the last one)."""
    out: dict[int, SessionRecord] = {}
    for r in course.sessions:
        if r.number not in out or out[r.number].status != "done":
            out[r.number] = r
    return out


@dataclass(frozen=True)
class NumberedSession:
    number: int
    phase: Phase
    make_up_for: int | None


def numbered_sessions(protocol: Protocol, course: Course) -> list[NumberedSession]:
    """Session numbers and their phases, with make-ups (independent of the calendar)."""
    status = session_status(course)
    out: list[NumberedSession] = []
    n = 0
    for phase in protocol.phases:
        own: list[int] = []
        for _ in range(phase.sessions):
            n += 1
            own.append(n)
            out.append(NumberedSession(n, phase, None))
        if phase.missed_session != "make_up_end_of_phase":
            continue
        queue = [m for m in own if status.get(m) in NOT_GIVEN]
        while queue:
            missed = queue.pop(0)
            n += 1
            out.append(NumberedSession(n, phase, missed))
            if status.get(n) in NOT_GIVEN:
                queue.append(n)
    return out


def phase_of(protocol: Protocol, course: Course, number: int) -> Phase | None:
    for s in numbered_sessions(protocol, course):
        if s.number == number:
            return s.phase
    return None


def _dose_options(phase: Phase, number: int, course: Course) -> tuple[float, ...]:
    dose = phase.dose
    if dose is None:
        return ()
    if dose.mg_per_kg is not None:
        if course.weight_kg is None:
            return ()
        return (weight_based_dose(dose.mg_per_kg, course.weight_kg, dose.max_mg).mg,)
    if number == 1 and dose.first_session_mg is not None:
        return (dose.first_session_mg,)
    return dose.options_mg


def _reviews(protocol: Protocol, numbered: list[NumberedSession]) -> dict[int, list[str]]:
    last_of: dict[str, int] = {}
    for s in numbered:
        last_of[s.phase.id] = s.number
    out: dict[int, list[str]] = {}
    for r in protocol.review_points:
        at = r.after_session if r.after_session is not None else last_of.get(r.end_of_phase or "")
        if at is not None:
            out.setdefault(at, []).append(r.text)
    return out


def _day_offset(k: int, per_week: int) -> int:
    """Day ``k`` of a treatment week: spread out up to 3 a week, consecutive from 4."""
    return (k * 7) // per_week if per_week <= 3 else k


def _gap_days(phase: Phase) -> int:
    return 2 if phase.per_week <= 3 else 1


def planned_sessions(
    protocol: Protocol, course: Course, calendar: ClinicCalendar
) -> list[PlannedSession]:
    """Every planned session of the course, in order (see the module docstring for the rules)."""
    numbered = numbered_sessions(protocol, course)
    known = {s.number for s in numbered}
    problems = [
        Problem(f"rescheduled.{n}", "unknown_session", f"session {n} is not in the schedule")
        for n in sorted(course.rescheduled)
        if n not in known
    ]
    if problems:
        raise InputError(problems)
    reviews = _reviews(protocol, numbered)
    out: list[PlannedSession] = []
    prev: date | None = None
    phase_start = course.start
    i = 0
    while i < len(numbered):
        phase = numbered[i].phase
        group = [s for s in numbered[i:] if s.phase is phase]
        days_used = 0
        for idx, s in enumerate(group):
            j, first_of_day = idx // phase.per_day, idx % phase.per_day == 0
            if first_of_day:
                week, k = divmod(j, phase.per_week)
                target = phase_start + timedelta(
                    days=week * phase.every_weeks * 7 + _day_offset(k, phase.per_week)
                )
                gap = timedelta(days=_gap_days(phase))
                candidate = target if prev is None else max(target, prev + gap)
                day = calendar.next_open(candidate)
                day_moved = target if day != target else None
                days_used = j + 1
            on, moved_from = day, day_moved
            if not first_of_day and prev is not None and prev > on:
                on, moved_from = prev, day
            if s.number in course.rescheduled:
                new = course.rescheduled[s.number]
                loc = f"rescheduled.{s.number}"
                if not calendar.is_open(new):
                    problems.append(Problem(loc, "clinic_closed", f"the clinic is closed on {new}"))
                if new < course.start:
                    problems.append(Problem(loc, "before_start", "before the course starts"))
                if prev is not None and (new < prev or (new == prev and phase.per_day == 1)):
                    problems.append(
                        Problem(loc, "out_of_order", f"must be after the previous session ({prev})")
                    )
                on, moved_from = new, on
            prev = on
            reviews_here = reviews.get(s.number, [])
            out.append(
                PlannedSession(
                    number=s.number,
                    on=on,
                    phase=phase.id,
                    dose_options_mg=_dose_options(phase, s.number, course),
                    moved_from=moved_from,
                    review=" / ".join(reviews_here) or None,
                    make_up_for=s.make_up_for,
                )
            )
        weeks = math.ceil(max(days_used, 1) / phase.per_week) * phase.every_weeks
        phase_start = phase_start + timedelta(weeks=weeks)
        i += len(group)
    if problems:
        raise InputError(problems)
    return out


def _review_done(course: Course, due_on: date) -> bool:
    return any(n.kind == "review" and n.on >= due_on for n in course.notes)


def _status(due_on: date, today: date) -> str:
    if today < due_on:
        return "scheduled"
    return "due" if today == due_on else "overdue"


MEASURE_WINDOW_DAYS = 1  # a measure counts for a session when taken that day or the day before


def course_tasks(
    protocol: Protocol,
    course: Course,
    calendar: ClinicCalendar,
    today: date,
    measured: Mapping[str, Collection[date]] | None = None,
) -> list[Task]:
    """Review points, sessions due or past their date without a record, and the measures due
    before the next session. A completed or stopped course has only its review points.

    ``measured`` maps an instrument id to the dates the patient has a score of it: a measure due
    before a session is ``done`` when one is dated that day or the day before
    (``MEASURE_WINDOW_DAYS``, a software convention); without ``measured`` it cannot be known and
    stays due.
    """
    planned = planned_sessions(protocol, course, calendar)
    status = session_status(course)
    tasks: list[Task] = []
    last_of: dict[str, int] = {p.phase: p.number for p in planned}
    review_at: dict[int, list[tuple[str, tuple[str, ...], bool]]] = {}
    for r in protocol.review_points:
        n = r.after_session if r.after_session is not None else last_of.get(r.end_of_phase or "")
        if n is not None:
            review_at.setdefault(n, []).append((r.text, r.source, r.verified))
    for p in planned:
        for text, source, verified in review_at.get(p.number, []):
            done = _review_done(course, p.on)
            tasks.append(
                Task(
                    code="review_point",
                    due_on=p.on,
                    text=f"Review at session {p.number}: {text}",
                    status="done" if done else _status(p.on, today),
                    citations=source,
                    verified=verified,
                )
            )
    if course.status in ("completed", "stopped"):
        return sorted(tasks, key=lambda t: (t.due_on, t.code))
    for p in planned:
        if p.number in status or p.on > today:
            continue
        if p.on < today:
            tasks.append(
                Task(
                    code="session_not_recorded",
                    due_on=p.on,
                    text=f"Session {p.number} ({p.on}) has no record: record it as done, "
                    "missed or cancelled",
                    status="overdue",
                )
            )
        else:
            tasks.append(
                Task(
                    code="session_due",
                    due_on=p.on,
                    text=f"Session {p.number} is planned today",
                    status="due",
                )
            )
    upcoming = next((p for p in planned if p.number not in status and p.on >= today), None)
    if upcoming is not None:
        for m in protocol.measure_before:
            taken = (measured or {}).get(m.instrument, ())
            window = upcoming.on - timedelta(days=MEASURE_WINDOW_DAYS)
            done = any(window <= d <= upcoming.on for d in taken)
            tasks.append(
                Task(
                    code="measure_before_session",
                    due_on=upcoming.on,
                    text=f"{m.text}: before session {upcoming.number}"
                    + (" (recorded)" if done else ""),
                    status="done" if done else _status(upcoming.on, today),
                    citations=m.source,
                    verified=m.verified,
                )
            )
    return sorted(tasks, key=lambda t: (t.due_on, t.code))
