"""Trial outcomes and lost responses read from the scores inside each trial's window."""

from __future__ import annotations

from datetime import date, timedelta

from tests.builders import a_history
from trdnav.core.assessment import assess

START = date(2023, 6, 1)


def _phq9(day: date, total: int) -> dict[str, object]:
    items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    items += [0] * (8 - len(items))
    return {"instrument": "PHQ-9", "date": day, "items": [*items, 0]}  # item 9 stays 0


def _trial(outcome: str = "unknown", weeks: int = 10):  # type: ignore[no-untyped-def]
    return a_history().trial("sertraline", 150, weeks=weeks, outcome=outcome, start=START)


def _scores(b, *pairs: tuple[int, int]):  # type: ignore[no-untyped-def]
    for day, total in pairs:
        b.data["measurements"].append(_phq9(START + timedelta(days=day), total))
    return b


def test_an_unknown_outcome_is_derived_from_the_scores_and_says_so(kb):
    a = assess(_scores(_trial(), (0, 20), (35, 17), (70, 15)).build(), kb)
    v = a.trials[0]
    assert v.outcome.value == "partial_response"  # 20 -> 15 = 25 % reduction
    assert a.alerts == ()
    assert v.outcome_source == "measurements"
    assert "outcome_from_measurements" in v.reasons
    assert any("derived from PHQ-9" in e.message for e in v.explanations)


def test_derived_outcomes_follow_the_instrument_thresholds(kb):
    cases = {(20, 4): "remission", (20, 10): "response", (20, 15): "partial_response"}
    cases[(20, 16)] = "no_response"
    for (b, e), expected in cases.items():
        a = assess(_scores(_trial(), (0, b), (70, e)).build(), kb)
        assert a.trials[0].outcome.value == expected, (b, e)


def test_a_recorded_outcome_is_never_overwritten(kb):
    a = assess(_scores(_trial("no_response"), (0, 20), (70, 4)).build(), kb)
    assert a.trials[0].outcome.value == "no_response"
    assert a.trials[0].outcome_source == "history"


def test_without_two_scores_the_outcome_stays_unknown(kb):
    a = assess(_scores(_trial(), (0, 20)).build(), kb)
    assert a.trials[0].outcome.value == "unknown"
    assert "outcome_unknown" in a.trials[0].reasons


def test_a_response_lost_inside_the_trial_sets_tachyphylaxis(kb):
    b = _scores(_trial("response", weeks=30), (0, 20), (42, 8), (120, 18))
    a = assess(b.build(), kb)
    assert "tachyphylaxis" in a.trd.flags


def test_a_response_kept_does_not_set_tachyphylaxis(kb):
    b = _scores(_trial("response", weeks=30), (0, 20), (42, 8), (120, 7))
    assert "tachyphylaxis" not in assess(b.build(), kb).trd.flags
