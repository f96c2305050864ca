"""Re-evaluation triggers: each route at its boundaries."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.builders import AS_OF, a_history
from trdnav.core.assessment import assess
from trdnav.core.measures import score_measurements
from trdnav.core.reevaluation import Trigger, reevaluation_triggers

MDQ_POSITIVE = [1] * 7 + [0] * 6 + [1, 2]


def _triggers(kb: Any, b: Any) -> list[Trigger]:
    h = b.build()
    a = assess(h, kb)
    return reevaluation_triggers(h, score_measurements(h, kb), a.trials, a.trd, AS_OF, kb)


def _reasons(kb: Any, b: Any) -> set[tuple[str, str]]:
    return {(t.code, t.reason) for t in _triggers(kb, b)}


def _phq9(day: date, item3: int = 1, item5: int = 1, item9: int = 0) -> dict[str, Any]:
    return {"instrument": "PHQ-9", "date": day, "items": [2, 2, item3, 1, item5, 1, 1, 1, item9]}


def _qids(day: date, sleep: int = 1, appetite: int = 1) -> dict[str, Any]:
    items = [sleep, 0, 0, 0, 1, appetite, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0]
    return {"instrument": "QIDS-SR16", "date": day, "items": items}


def test_a_bare_history_raises_nothing(kb):
    assert _triggers(kb, a_history()) == []


def test_two_failed_adequate_trials_are_due_for_re_evaluation(kb):
    two = a_history().trial("sertraline", 150).trial("venlafaxine", 150)
    triggers = [t for t in _triggers(kb, two) if t.reason == "several_failures"]
    assert len(triggers) == 1
    t = triggers[0]
    assert t.code == "re_evaluation_due"
    assert t.date == AS_OF
    assert t.citation == kb.citation(t.citations[0])
    assert not t.verified
    one = a_history().trial("sertraline", 150)
    assert ("re_evaluation_due", "several_failures") not in _reasons(kb, one)


def _ongoing(adherence: float, totals: tuple[float, float]) -> Any:
    start = AS_OF - timedelta(weeks=8)
    b = a_history().treatment(
        type="medication",
        drug="sertraline",
        start=start,
        doses=[{"from": start, "mg_per_day": 150}],
        adherence=adherence,
    )
    b.data["measurements"] = [
        {"instrument": "PHQ-9", "date": start, "total": totals[0]},
        {"instrument": "PHQ-9", "date": AS_OF - timedelta(days=3), "total": totals[1]},
    ]
    return b


def test_a_reliable_worsening_on_an_adherent_ongoing_trial(kb):
    triggers = [
        t
        for t in _triggers(kb, _ongoing(0.9, (10, 22)))
        if t.reason == "worsening_despite_adherence"
    ]
    assert len(triggers) == 1
    assert triggers[0].severity == "high"
    assert "sertraline" in triggers[0].message


@pytest.mark.parametrize(("adherence", "totals"), [(0.5, (10, 22)), (0.9, (10, 11))])
def test_no_worsening_trigger_with_poor_adherence_or_small_change(kb, adherence, totals):
    reasons = _reasons(kb, _ongoing(adherence, totals))
    assert ("re_evaluation_due", "worsening_despite_adherence") not in reasons


@pytest.mark.parametrize(("weeks_ago", "fires"), [(8, True), (9, False)])
def test_suicidal_thoughts_in_the_last_eight_weeks(kb, weeks_ago, fires):
    b = a_history()
    b.data["measurements"] = [_phq9(AS_OF - timedelta(weeks=weeks_ago), item9=1)]
    triggers = [t for t in _triggers(kb, b) if t.reason == "suicidal_thoughts"]
    assert bool(triggers) is fires
    if fires:
        assert triggers[0].severity == "high"


@pytest.mark.parametrize(
    ("measurement", "fires"),
    [
        (_phq9(AS_OF, item3=3), True),
        (_phq9(AS_OF, item5=3), True),
        (_phq9(AS_OF, item3=2, item5=2), False),
        (_qids(AS_OF, sleep=2), True),
        (_qids(AS_OF, appetite=2), True),
        (_qids(AS_OF, sleep=1, appetite=1), False),
        (_phq9(AS_OF - timedelta(weeks=9), item3=3), False),
    ],
)
def test_marked_sleep_or_appetite_change(kb, measurement, fires):
    b = a_history()
    b.data["measurements"] = [measurement]
    assert (("re_evaluation_due", "sleep_or_appetite_change") in _reasons(kb, b)) is fires


def test_bipolar_features_raise_bipolarity_suspected(kb):
    b = a_history()
    b.data["measurements"] = [{"instrument": "MDQ", "date": AS_OF, "items": MDQ_POSITIVE}]
    assert {
        ("bipolarity_suspected", "bipolar_features"),
        ("re_evaluation_due", "bipolar_features"),
    } <= (_reasons(kb, b))
    assert ("bipolarity_suspected", "bipolar_features") in _reasons(
        kb, a_history().condition("bipolar_family_history")
    )
    assert ("bipolarity_suspected", "bipolar_features") in _reasons(
        kb, a_history().episode(diagnosis="bipolar_i_depression")
    )


def test_an_inadequate_trial_raises_inadequate_trials(kb):
    low = a_history().trial("sertraline", 25)
    triggers = [t for t in _triggers(kb, low) if t.code == "inadequate_trials"]
    assert len(triggers) == 1
    assert "sertraline" in triggers[0].message
    adequate = a_history().trial("sertraline", 150)
    assert not [t for t in _triggers(kb, adequate) if t.code == "inadequate_trials"]


def test_emotional_blunting_recorded_as_a_condition_is_due_for_re_evaluation(kb):
    assert kb.workup.reevaluation.emotional_blunting_condition in kb.conditions
    plain = a_history().trial("sertraline", 150)
    assert not [r for r in _reasons(kb, plain) if "blunting" in r[1]]
    blunted = a_history().trial("sertraline", 150).condition("emotional_blunting")
    assert [r for r in _reasons(kb, blunted) if "blunting" in r[1]]


def test_triggers_are_ordered_by_severity(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 150)
    b.data["measurements"] = [_phq9(AS_OF, item9=2)]
    severities = [t.severity for t in _triggers(kb, b)]
    assert severities[0] == "high"
    assert severities == sorted(severities, key=["high", "moderate", "low"].index)
