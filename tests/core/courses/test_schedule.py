from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trdnav.core.courses.model import CourseNote, SessionRecord
from trdnav.core.courses.schedule import ClinicCalendar, course_tasks, planned_sessions
from trdnav.errors import InputError

from .conftest import KB, START, a_course

WEEKDAYS = ClinicCalendar()


def dates(protocol_id: str, calendar: ClinicCalendar = WEEKDAYS, **kw):
    course = a_course(protocol_id, **kw)
    return planned_sessions(KB.protocols[protocol_id], course, calendar)


def missed(n: int, on: date, status: str = "missed") -> SessionRecord:
    return SessionRecord(number=n, status=status, on=on)  # type: ignore[arg-type]


def test_esketamine_induction_is_twice_weekly_then_weekly_then_every_two_weeks():
    ps = dates("esketamine_trd")
    assert len(ps) == 18
    assert [p.on.strftime("%a") for p in ps[:8]] == ["Mon", "Thu"] * 4
    assert ps[7].on == date(2024, 6, 27) and ps[7].phase == "induction"
    assert ps[7].review and "end of induction" in ps[7].review
    weekly = [p.on for p in ps if p.phase == "maintenance_weekly"]
    assert weekly == [date(2024, 7, 1) + timedelta(weeks=k) for k in range(4)]
    later = [p.on for p in ps if p.phase == "maintenance_individualised"]
    assert [(b - a).days for a, b in itertools.pairwise(later)] == [14] * 5
    assert ps[0].dose_options_mg == (56,) and ps[1].dose_options_mg == (56, 84)


def test_a_holiday_moves_the_session_to_the_next_open_day_and_keeps_a_day_between():
    cal = ClinicCalendar(closed_dates=frozenset({date(2024, 6, 6)}))  # Thursday, session 2
    ps = dates("esketamine_trd", cal)
    assert ps[1].on == date(2024, 6, 7) and ps[1].moved_from == date(2024, 6, 6)
    assert ps[2].on == date(2024, 6, 10)  # Monday is 3 days later: unchanged
    cal = ClinicCalendar(closed_dates=frozenset({date(2024, 6, 3)}))  # Monday, session 1
    ps = dates("esketamine_trd", cal)
    assert ps[0].on == date(2024, 6, 4)
    assert ps[1].on == date(2024, 6, 6)  # Thursday is 2 days after Tuesday: kept


def test_a_session_pushed_next_to_the_following_one_moves_that_one_too():
    # Thursday and Friday closed: session 2 goes to Monday, session 3 (Monday) to Wednesday
    cal = ClinicCalendar(closed_dates=frozenset({date(2024, 6, 6), date(2024, 6, 7)}))
    ps = dates("esketamine_trd", cal)
    assert ps[1].on == date(2024, 6, 10)
    assert ps[2].on == date(2024, 6, 12) and ps[2].moved_from == date(2024, 6, 10)


def test_weekends_are_skipped_by_rtms_five_days_a_week():
    ps = dates("rtms_10hz", start=date(2024, 6, 5))  # a Wednesday
    assert len(ps) == 30
    assert all(p.on.weekday() < 5 for p in ps)
    assert [p.on.strftime("%a") for p in ps[:5]] == ["Wed", "Thu", "Fri", "Mon", "Tue"]


def test_accelerated_itbs_gives_ten_sessions_a_day_for_five_days():
    ps = dates("rtms_accelerated_itbs")
    days = sorted({p.on for p in ps})
    assert days == [START + timedelta(days=k) for k in range(5)]
    assert all(sum(p.on == d for p in ps) == 10 for d in days)


def test_ect_three_times_a_week_with_a_review_after_six():
    ps = dates("ect_rul_ultrabrief")
    assert [p.on.strftime("%a") for p in ps[:3]] == ["Mon", "Wed", "Fri"]
    assert ps[5].review and "switching" in ps[5].review


def test_a_missed_induction_session_is_made_up_at_the_end_of_induction():
    course_sessions = (missed(3, date(2024, 6, 10)),)
    ps = dates("esketamine_trd", sessions=course_sessions)
    induction = [p for p in ps if p.phase == "induction"]
    assert len(induction) == 9 and induction[-1].make_up_for == 3
    assert induction[-1].on == date(2024, 7, 1)
    assert induction[-1].review and induction[7].review is None  # the review moves to the end
    first_weekly = next(p for p in ps if p.phase == "maintenance_weekly")
    assert first_weekly.number == 10 and first_weekly.on > induction[-1].on
    assert len(ps) == 19


def test_a_deferred_session_is_made_up_but_not_once_it_is_given():
    deferred = missed(1, START, "deferred")
    assert len(dates("ketamine_iv", sessions=(deferred,))) == 7
    redone = SessionRecord(number=1, status="done", on=START + timedelta(days=1))
    assert len(dates("ketamine_iv", sessions=(deferred, redone))) == 6


def test_a_missed_make_up_is_made_up_again():
    ps = dates("ketamine_iv", sessions=(missed(2, START), missed(7, START)))
    assert [p.make_up_for for p in ps[6:]] == [2, 7]


def test_ect_and_maintenance_do_not_make_up_missed_sessions():
    assert len(dates("ect_bitemporal", sessions=(missed(2, START),))) == 12
    assert len(dates("esketamine_trd", sessions=(missed(9, date(2024, 7, 1)),))) == 18


def test_cancelled_sessions_are_not_made_up():
    assert len(dates("ketamine_iv", sessions=(missed(2, START, "cancelled"),))) == 6


def test_rescheduling_moves_one_session_and_later_ones_only_as_needed():
    ps = dates("ketamine_iv", rescheduled={2: date(2024, 6, 7)})  # Thursday -> Friday
    assert ps[1].on == date(2024, 6, 7) and ps[1].moved_from == date(2024, 6, 6)
    assert ps[2].on == date(2024, 6, 10)
    ps = dates("ketamine_iv", rescheduled={2: date(2024, 6, 10)})  # onto session 3's Monday
    assert ps[1].on == date(2024, 6, 10) and ps[2].on == date(2024, 6, 12)


@pytest.mark.parametrize(
    ("moved", "code"),
    [
        ({2: date(2024, 6, 8)}, "clinic_closed"),  # Saturday
        ({2: date(2024, 6, 3)}, "out_of_order"),  # same day as session 1
        ({1: date(2024, 5, 31)}, "before_start"),
        ({40: date(2024, 6, 12)}, "unknown_session"),
    ],
)
def test_a_bad_reschedule_names_the_session(moved, code):
    with pytest.raises(InputError) as e:
        dates("ketamine_iv", rescheduled=moved)
    assert any(p.code == code and p.loc.startswith("rescheduled.") for p in e.value.problems)


def test_a_calendar_with_no_open_day_is_an_error():
    with pytest.raises(InputError):
        dates("ketamine_iv", ClinicCalendar(open_weekdays=frozenset()))


def tasks(protocol_id: str, today: date, **kw):
    course = a_course(protocol_id, **kw)
    return course_tasks(KB.protocols[protocol_id], course, WEEKDAYS, today)


def test_tasks_list_unrecorded_sessions_the_review_point_and_the_next_phq9():
    ts = tasks("esketamine_trd", date(2024, 6, 7))  # sessions 1 (Mon) and 2 (Thu) past
    codes = [(t.code, t.due_on) for t in ts]
    assert ("session_not_recorded", date(2024, 6, 3)) in codes
    assert ("session_not_recorded", date(2024, 6, 6)) in codes
    review = next(t for t in ts if t.code == "review_point")
    assert review.due_on == date(2024, 6, 27) and review.status == "scheduled"
    assert review.verified == KB.protocols["esketamine_trd"].review_points[0].verified
    phq = next(t for t in ts if t.code == "measure_before_session")
    assert phq.due_on == date(2024, 6, 10) and "session 3" in phq.text


def test_the_review_is_due_on_its_day_overdue_after_and_done_with_a_review_note():
    due = date(2024, 6, 27)
    assert next(t for t in tasks("esketamine_trd", due) if t.code == "review_point").status == "due"
    late = due + timedelta(days=1)
    assert (
        next(t for t in tasks("esketamine_trd", late) if t.code == "review_point").status
        == "overdue"
    )
    note = CourseNote(kind="review", on=due, by="dr", text="Responding: maintenance.")
    ts = tasks("esketamine_trd", late, notes=(note,))
    assert next(t for t in ts if t.code == "review_point").status == "done"


def test_todays_session_is_due_and_a_recorded_one_is_not_a_task():
    ts = tasks("ketamine_iv", START)
    assert [t.code for t in ts if t.due_on == START] == ["measure_before_session", "session_due"]
    done = SessionRecord(number=1, status="done", on=START)
    ts = tasks("ketamine_iv", START, sessions=(done,))
    assert not any(t.code.startswith("session") for t in ts)
    phq = next(t for t in ts if t.code == "measure_before_session")
    assert "session 2" in phq.text


def test_the_phq9_before_a_session_is_done_only_when_scored_that_day_or_the_day_before():
    course = a_course("ketamine_iv")
    protocol = KB.protocols["ketamine_iv"]

    def status(*dates: date) -> str:
        measured = {"phq9": set(dates)}
        ts = course_tasks(protocol, course, WEEKDAYS, START, measured)
        return next(t for t in ts if t.code == "measure_before_session").status

    assert status() == "due"  # nothing recorded: due on the session day
    assert status(START) == "done"
    assert status(START - timedelta(days=1)) == "done"  # the edge of the window
    assert status(START - timedelta(days=2)) == "due"  # too early to count
    other = course_tasks(protocol, course, WEEKDAYS, START, {"gad7": {START}})
    assert next(t for t in other if t.code == "measure_before_session").status == "due"


def test_a_stopped_course_has_only_review_tasks():
    ts = tasks("ketamine_iv", date(2024, 7, 1), status="stopped")
    assert {t.code for t in ts} == {"review_point"}


closed_days = st.frozensets(
    st.dates(min_value=date(2024, 6, 1), max_value=date(2024, 9, 30)), max_size=15
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(KB.protocols)),
    st.frozensets(st.integers(0, 6), min_size=1),
    closed_days,
    st.dates(min_value=date(2024, 6, 1), max_value=date(2024, 6, 30)),
    st.lists(st.integers(1, 12), max_size=3),
)
def test_sessions_are_never_on_closed_days_and_always_in_order(pid, weekdays, closed, start, miss):
    cal = ClinicCalendar(open_weekdays=weekdays, closed_dates=closed)
    protocol = KB.protocols[pid]
    miss = [n for n in miss if n <= protocol.planned_total]
    records = tuple(missed(n, start) for n in sorted(set(miss)))
    ps = planned_sessions(protocol, a_course(pid, start=start, sessions=records), cal)
    assert [p.number for p in ps] == list(range(1, len(ps) + 1))
    assert all(cal.is_open(p.on) and p.on >= start for p in ps)
    for a, b in itertools.pairwise(ps):
        same_phase_multi = a.phase == b.phase and protocol.phase(a.phase).per_day > 1
        assert b.on > a.on or (same_phase_multi and b.on == a.on)
    made_up = sum(
        1 for n in set(miss) if protocol.phase(ps[n - 1].phase).missed_session != "no_make_up"
    )
    assert len(ps) >= protocol.planned_total and len(ps) <= protocol.planned_total + made_up
