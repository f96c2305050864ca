from __future__ import annotations

from datetime import date

import pytest

from tests.builders import a_history
from trdnav.core.adequacy import AdequacyRules
from trdnav.core.assessment import assess
from trdnav.knowledge.load import Knowledge


def _min(kb: Knowledge, drug: str) -> float:
    dose = kb.drugs[drug].antidepressant_dose
    assert dose is not None
    return dose.min_adequate_mg_per_day


def _verdict(kb: Knowledge, **kw: object):  # type: ignore[no-untyped-def]
    h = a_history().trial("sertraline", **kw).build()  # type: ignore[arg-type]
    return assess(h, kb).trials[0]


def test_a_trial_of_exactly_six_weeks_at_exactly_the_minimum_dose_is_adequate(kb):
    v = _verdict(kb, mg=_min(kb, "sertraline"), weeks=6, adherence=0.8)
    assert v.adequate is True
    assert v.weeks_at_adequate_dose == 6.0
    assert v.counts_as_failure is True
    assert v.reasons == ()


def test_one_day_short_of_six_weeks_is_too_short(kb):
    v = _verdict(kb, mg=_min(kb, "sertraline"), weeks=6 - 1 / 7)
    assert v.adequate is False
    assert "duration_too_short" in v.reasons
    assert v.counts_as_failure is False


def test_a_dose_just_below_the_minimum_is_not_adequate(kb):
    v = _verdict(kb, mg=_min(kb, "sertraline") - 0.5, weeks=12)
    assert v.adequate is False
    assert v.reasons[0] == "dose_below_minimum"
    assert "duration_too_short" not in v.reasons


def test_adherence_exactly_at_the_threshold_is_enough_and_just_below_is_not(kb):
    assert _verdict(kb, mg=100, adherence=0.8).adequate is True
    v = _verdict(kb, mg=100, adherence=0.79)
    assert v.adequate is False
    assert "poor_adherence" in v.reasons


def test_weeks_count_only_from_the_dose_step_that_reached_the_minimum(kb):
    low = _min(kb, "sertraline") / 2
    v = _verdict(kb, mg=_min(kb, "sertraline"), weeks=5, ramp_from=low, ramp_days=28)
    assert v.weeks_at_adequate_dose == 5.0
    assert "duration_too_short" in v.reasons


def test_the_longest_continuous_run_at_an_adequate_dose_is_what_counts(kb):
    m = _min(kb, "sertraline")
    h = (
        a_history()
        .treatment(
            type="medication",
            drug="sertraline",
            start=date(2022, 2, 1),
            stop=date(2022, 5, 1),
            adherence=0.9,
            outcome="no_response",
            doses=[
                {"from": date(2022, 2, 1), "mg_per_day": m},
                {"from": date(2022, 3, 1), "mg_per_day": m / 2},
                {"from": date(2022, 3, 15), "mg_per_day": m},
            ],
        )
        .build()
    )
    v = assess(h, kb).trials[0]
    assert v.weeks_at_adequate_dose == 6.7  # 15 March to 1 May = 47 days
    assert v.adequate is True


def test_an_intolerance_is_not_a_failure_of_efficacy(kb):
    v = _verdict(kb, mg=150, weeks=10, outcome="intolerance")
    assert v.adequate is False
    assert v.counts_as_failure is False
    assert "stopped_for_intolerance" in v.reasons


def test_a_trial_without_doses_has_unknown_adequacy_and_says_why(kb):
    v = _verdict(kb, mg=None)
    assert v.adequate is None
    assert "dose_unknown" in v.reasons
    assert v.counts_as_failure is False


def test_missing_adherence_makes_adequacy_unknown_not_false(kb):
    v = _verdict(kb, mg=150, adherence=None)
    assert v.adequate is None
    assert "adherence_unknown" in v.reasons


def test_a_definite_shortfall_wins_over_an_unknown(kb):
    v = _verdict(kb, mg=150, weeks=2, adherence=None)
    assert v.adequate is False


@pytest.mark.parametrize(("weeks", "adequate"), [(3.9, False), (4.0, True)])
def test_the_weeks_threshold_is_configurable(kb, weeks, adequate):
    rules = AdequacyRules.from_knowledge(kb, min_weeks=4)
    h = a_history().trial("sertraline", 100, weeks=weeks).build()
    assert assess(h, kb, rules).trials[0].adequate is adequate


def test_an_ongoing_trial_runs_until_the_assessment_date(kb):
    h = (
        a_history()
        .treatment(
            type="medication",
            drug="sertraline",
            start=date(2024, 4, 1),
            doses=[{"from": date(2024, 4, 1), "mg_per_day": 100}],
            adherence=1.0,
            outcome="unknown",
        )
        .build()
    )
    v = assess(h, kb).trials[0]
    assert v.weeks_at_adequate_dose == 8.7  # 1 April to 1 June = 61 days
    assert "ongoing" in v.reasons


def test_an_augmentation_is_judged_on_its_augmentation_dose_and_never_counted(kb):
    aug = kb.drugs["aripiprazole"].augmentation_dose
    assert aug is not None and aug.min_mg_per_day is not None
    h = (
        a_history()
        .trial("sertraline", 150, weeks=10)
        .trial(
            "aripiprazole",
            aug.min_mg_per_day,
            weeks=8,
            augments="sertraline",
            start=date(2022, 3, 1),
        )
        .build()
    )
    v = assess(h, kb).trials[1]
    assert v.role == "augmentation"
    assert v.adequate is True
    assert v.counts_as_failure is False
    assert "augmentation_not_counted" in v.reasons


def test_lithium_is_judged_on_its_serum_level(kb):
    level = kb.drugs["lithium"].augmentation_dose.serum_level  # type: ignore[union-attr]
    assert level is not None
    base = a_history().trial("sertraline", 150, weeks=10)
    ok = base.trial(
        "lithium",
        600,
        weeks=8,
        augments="sertraline",
        serum_level=level.min,
        start=date(2022, 3, 1),
    ).build()
    assert assess(ok, kb).trials[1].adequate is True
    low = (
        a_history()
        .trial("lithium", 600, weeks=8, augments="sertraline", serum_level=level.min - 0.1)
        .build()
    )
    assert "serum_level_below_target" in assess(low, kb).trials[0].reasons
    unknown = a_history().trial("lithium", 600, weeks=8, augments="sertraline").build()
    assert "serum_level_unknown" in assess(unknown, kb).trials[0].reasons


def test_a_trial_that_ended_before_the_current_episode_does_not_count(kb):
    h = a_history().trial("sertraline", 150, weeks=8, start=date(2019, 1, 1)).build()
    v = assess(h, kb).trials[0]
    assert v.adequate is True
    assert v.counts_as_failure is False
    assert "before_current_episode" in v.reasons
