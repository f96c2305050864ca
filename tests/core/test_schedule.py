"""Which instruments are due, and which are overdue."""

from __future__ import annotations

from datetime import date, timedelta

from tests.builders import AS_OF, a_history
from trdnav.core.measures import score_measurements
from trdnav.core.schedule import measurement_schedule


def _due(kb, b, as_of: date = AS_OF):  # type: ignore[no-untyped-def]
    h = b.build()
    return {d.rule: d for d in measurement_schedule(h, score_measurements(h, kb), kb, as_of)}


def _phq9(day: date, item9: int = 0) -> dict[str, object]:
    return {"instrument": "PHQ-9", "date": day, "items": [2, 2, 1, 1, 1, 1, 1, 1, item9]}


def _recent_trial(days_ago: int):  # type: ignore[no-untyped-def]
    start = AS_OF - timedelta(days=days_ago)
    return a_history().treatment(
        type="medication",
        drug="sertraline",
        start=start,
        doses=[{"from": start, "mg_per_day": 100}],
        adherence=1.0,
    )


def test_phq9_is_due_every_two_weeks_in_acute_treatment(kb):
    b = _recent_trial(20)
    b.data["measurements"].append(_phq9(AS_OF - timedelta(days=14)))
    d = _due(kb, b)["phq9_acute"]
    assert (d.status, d.due_on) == ("due", AS_OF)
    b.data["measurements"][0]["date"] = AS_OF - timedelta(days=15)
    assert _due(kb, b)["phq9_acute"].status == "overdue"
    b.data["measurements"][0]["date"] = AS_OF - timedelta(days=13)
    assert _due(kb, b)["phq9_acute"].status == "scheduled"


def test_no_score_since_the_start_counts_from_the_start(kb):
    d = _due(kb, _recent_trial(30))["phq9_acute"]
    assert d.due_on == AS_OF - timedelta(days=16) and d.status == "overdue"


def test_acute_phase_ends_after_twelve_weeks_without_a_change(kb):
    assert "phq9_acute" in _due(kb, _recent_trial(83))
    assert "phq9_acute" not in _due(kb, _recent_trial(84))


def test_an_ongoing_interventional_course_asks_for_a_phq9_each_session(kb):
    b = a_history().treatment(type="esketamine", start=AS_OF - timedelta(days=200))
    assert _due(kb, b)["phq9_each_session"].status == "every_session"
    b.data["treatments"][0]["stop"] = AS_OF - timedelta(days=1)
    assert "phq9_each_session" not in _due(kb, b)


def test_a_suicide_signal_makes_a_cssrs_due_the_same_day_until_done(kb):
    b = a_history().trial("sertraline", 150)
    b.data["measurements"].append(_phq9(AS_OF - timedelta(days=2), item9=1))
    d = _due(kb, b)["cssrs_after_signal"]
    assert (d.status, d.due_on) == ("overdue", AS_OF - timedelta(days=2))
    b.data["measurements"].append(
        {"instrument": "C-SSRS", "date": AS_OF - timedelta(days=2), "items": [1, 0, 0, 0, 0, 0, 0]}
    )
    assert "cssrs_after_signal" not in _due(kb, b)


def test_nothing_is_due_for_a_patient_off_treatment_without_signals(kb):
    assert _due(kb, a_history().trial("sertraline", 150)) == {}
