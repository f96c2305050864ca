"""Prior authorisation: each criterion type judged against hand-made records — met, not met and
missing data, with the boundaries payers write (exactly 6 weeks, exactly 25 %, exactly 50 %,
a score on exactly the 30th day)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.builders import AS_OF, HistoryBuilder, a_history
from trdnav.core.assessment import assess
from trdnav.core.prior_auth.evaluate import evaluate_policy
from trdnav.core.prior_auth.model import CriterionResult, PriorAuthResult
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.payers import (
    Age,
    Attestation,
    AugmentationTrials,
    BaselineSeverity,
    ConcurrentTreatment,
    CourseLimit,
    Criterion,
    Exclusions,
    FailedTrials,
    Failure,
    PayerPolicy,
    PsychotherapyTrial,
    ScoreThreshold,
    Window,
)

START = date(2022, 2, 1)  # the builder's first trial starts here (episode onset 2022-01-01)


def a_policy(*criteria: Criterion, **fields: Any) -> PayerPolicy:
    base: dict[str, Any] = {
        "id": "test_policy",
        "payer": "Test Payer",
        "name": "rTMS for depression",
        "treatment": "rtms",
        "version": "2024-01",
        "source": ("trdnav_conventions",),
        "verified": False,
        "criteria": criteria,
    }
    return PayerPolicy(**{**base, **fields})


def evaluate(
    b: HistoryBuilder,
    *criteria: Criterion,
    kb: Knowledge,
    kind: str = "initial",
    request: date = AS_OF,
    **policy: Any,
) -> PriorAuthResult:
    b.data["assessed_on"] = request
    history = b.build()
    return evaluate_policy(
        a_policy(*criteria, **policy),
        history,
        assess(history, kb),
        kb,
        request,
        kind,  # type: ignore[arg-type]
    )


def judge(b: HistoryBuilder, criterion: Criterion, kb: Knowledge, **kw: Any) -> CriterionResult:
    return evaluate(b, criterion, kb=kb, **kw).results[0]


def score(b: HistoryBuilder, day: date, total: float, instrument: str = "PHQ-9") -> HistoryBuilder:
    b.data["measurements"].append({"instrument": instrument, "date": day, "total": total})
    return b


def counted(r: CriterionResult, kind: str = "trial") -> list[str]:
    return [e.ref for e in r.evidence if e.kind == kind and e.counts]


def two_trials(**failure: Any) -> FailedTrials:
    return FailedTrials(
        id="failed_trials",
        text="two failed antidepressants from two classes",
        min_count=2,
        min_classes=2,
        min_weeks=6,
        failure=Failure(**failure),
    )


# --- failed antidepressant trials ---------------------------------------------------------------


def test_two_failed_adequate_trials_from_two_classes_meet_the_criterion(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    r = judge(b, two_trials(), kb)
    assert r.status == "met"
    assert counted(r) == ["treatments[0]", "treatments[1]"]
    assert "2 failed antidepressant trials from 2 classes (sertraline, venlafaxine)" in r.reason


def test_two_trials_of_one_class_do_not_meet_a_two_class_rule(kb):
    b = a_history().trial("sertraline", 150).trial("escitalopram", 20)
    r = judge(b, two_trials(), kb)
    assert r.status == "not_met"
    assert "from 1 class" in r.reason
    assert r.missing == ()


def test_a_trial_of_exactly_six_weeks_counts_and_one_day_less_does_not(kb):
    exact = a_history().trial("sertraline", 150, weeks=6).trial("venlafaxine", 225, weeks=6)
    assert judge(exact, two_trials(), kb).status == "met"
    short = a_history().trial("sertraline", 150, weeks=6).trial("venlafaxine", 225, weeks=41 / 7)
    r = judge(short, two_trials(), kb)
    assert r.status == "not_met"
    row = next(e for e in r.evidence if e.ref == "treatments[1]")
    assert not row.counts
    assert row.why_not == "5.9 weeks at an adequate dose; 6 needed"


def test_adherence_unknown_is_missing_data_not_a_failure(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225, adherence=None)
    c = two_trials().model_copy(update={"min_adherence": 0.8})
    r = judge(b, c, kb)
    assert r.status == "missing"
    assert r.missing == ("venlafaxine (2022-04-12): adherence not recorded",)
    low = a_history().trial("sertraline", 150).trial("venlafaxine", 225, adherence=0.7)
    r = judge(low, c, kb)
    assert r.status == "not_met"
    assert "adherence 70%; at least 80% needed" in (r.evidence[1].why_not or "")


def test_exactly_80_percent_adherence_counts(kb):
    b = a_history().trial("sertraline", 150, adherence=0.8).trial("venlafaxine", 225, adherence=0.8)
    c = two_trials().model_copy(update={"min_adherence": 0.8})
    assert judge(b, c, kb).status == "met"


def _scored_trials(first: tuple[float, float], second: tuple[float, float]) -> HistoryBuilder:
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    for (base, end), start in ((first, START), (second, date(2022, 4, 12))):
        score(b, start, base)
        score(b, start + timedelta(weeks=8), end)
    return b


def test_exactly_25_percent_improvement_counts_as_at_most_25_percent(kb):
    c = two_trials(max_improvement_pct=25, scores_required=True)
    r = judge(_scored_trials((20, 15), (20, 16)), c, kb)
    assert r.status == "met"
    assert "PHQ-9 20 on 2022-02-01 → 15 on 2022-03-29 (-25.0 %): ≤ 25 % improvement" in (
        r.evidence[0].summary
    )
    assert [e.ref for e in r.evidence if e.kind == "score"] == [
        "measurements[0]",
        "measurements[1]",
        "measurements[2]",
        "measurements[3]",
    ]
    r = judge(_scored_trials((20, 14), (20, 16)), c, kb)
    assert r.status == "not_met"
    assert r.evidence[0].why_not == "PHQ-9 improved 30.0 %, not ≤ 25 % improvement"


def test_exactly_50_percent_improvement_does_not_count_as_below_50_percent(kb):
    c = two_trials(below_improvement_pct=50, scores_required=True)
    assert judge(_scored_trials((20, 11), (20, 16)), c, kb).status == "met"
    r = judge(_scored_trials((20, 10), (20, 16)), c, kb)
    assert r.status == "not_met"
    assert "improved 50.0 %, not < 50 % improvement" in (r.evidence[0].why_not or "")


def test_without_scores_a_rule_that_requires_them_names_what_is_missing(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    c = two_trials(max_improvement_pct=25, scores_required=True, instruments=("phq9",))
    r = judge(b, c, kb)
    assert r.status == "missing"
    assert r.missing == (
        "sertraline (2022-02-01): no PHQ-9 score inside the trial to show ≤ 25 % improvement",
        "venlafaxine (2022-04-12): no PHQ-9 score inside the trial to show ≤ 25 % improvement",
    )


def test_without_scores_the_recorded_outcome_serves_when_scores_are_not_required(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    r = judge(b, two_trials(max_improvement_pct=25), kb)
    assert r.status == "met"
    assert "recorded outcome, no scores: no response" in r.evidence[0].summary


def test_an_unknown_outcome_is_missing_and_a_response_is_not_a_failure(kb):
    unknown = a_history().trial("sertraline", 150).trial("venlafaxine", 225, outcome="unknown")
    r = judge(unknown, two_trials(), kb)
    assert r.status == "missing"
    assert r.missing == ("venlafaxine (2022-04-12): outcome not recorded",)
    responded = a_history().trial("sertraline", 150).trial("venlafaxine", 225, outcome="response")
    r = judge(responded, two_trials(), kb)
    assert r.status == "not_met"
    assert "recorded outcome: response, not a failure" in (r.evidence[1].why_not or "")


def test_intolerance_counts_only_when_the_policy_accepts_it(kb):
    b = a_history().trial("sertraline", 150, weeks=2, outcome="intolerance")
    b.trial("venlafaxine", 225)
    assert judge(b, two_trials(), kb).status == "met"
    r = judge(b, two_trials(intolerance_counts=False), kb)
    assert r.status == "not_met"
    assert "stopped for intolerance" in (r.evidence[0].why_not or "")


def test_a_maximal_dose_rule_counts_weeks_at_the_usual_maximum(kb):
    c = two_trials().model_copy(update={"dose_level": "maximal"})
    below = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    r = judge(below, c, kb)
    assert r.status == "not_met"
    assert r.evidence[0].why_not == "0.0 weeks at the usual maximum (200 mg/day) or above; 6 needed"
    at_max = a_history().trial("sertraline", 200, weeks=6).trial("venlafaxine", 225, weeks=6)
    assert judge(at_max, c, kb).status == "met"


def test_a_dose_below_the_adequate_minimum_does_not_count(kb):
    b = a_history().trial("sertraline", 25).trial("venlafaxine", 225)
    r = judge(b, two_trials(), kb)
    assert r.status == "not_met"
    assert "below the minimum adequate" in (r.evidence[0].why_not or "")


def test_a_trial_without_a_dose_lacks_data(kb):
    b = a_history().trial("sertraline", None).trial("venlafaxine", 225)
    r = judge(b, two_trials(), kb)
    assert r.status == "missing"
    assert r.missing == ("sertraline (2022-02-01): dose not recorded",)


def test_one_drug_counts_once_however_many_trials(kb):
    b = a_history().trial("sertraline", 150).trial("sertraline", 200)
    c = FailedTrials(id="ft", text="two failed antidepressants", min_count=2, min_weeks=6)
    r = judge(b, c, kb)
    assert r.status == "not_met"
    assert r.evidence[1].why_not == "another sertraline trial is already counted (treatments[0])"


def test_the_window_decides_which_trials_are_looked_at(kb):
    old = date(2020, 1, 1)
    b = a_history().trial("sertraline", 150, start=old).trial("venlafaxine", 225)
    episode = two_trials()
    r = judge(b, episode, kb)
    assert r.status == "not_met"
    assert r.evidence[0].why_not == "ended before the current episode began (2022-01-01)"
    anywhere = episode.model_copy(update={"window": Window(scope="any")})
    assert judge(b, anywhere, kb).status == "met"
    lookback = episode.model_copy(update={"window": Window(scope="lookback", years=5)})
    r = judge(b, lookback, kb)
    assert r.status == "met"
    two_years = episode.model_copy(update={"window": Window(scope="lookback", years=2)})
    r = judge(b, two_years, kb)
    assert r.evidence[0].why_not == "started before the 2-year look-back (from 2022-06-01)"


def test_not_met_when_even_the_trials_lacking_data_cannot_make_the_count(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225, adherence=None)
    c = FailedTrials(
        id="ft", text="three failed antidepressants", min_count=3, min_weeks=6, min_adherence=0.8
    )
    r = judge(b, c, kb)
    assert r.status == "not_met"
    assert "trials lacking data could not make up the difference" in r.reason


def test_no_trial_on_record_is_not_met(kb):
    r = judge(a_history(), two_trials(), kb)
    assert r.status == "not_met"
    assert r.reason.startswith("no failed antidepressant trial recorded")


def test_scores_inside_the_trial_serve_as_baseline_when_none_precedes_it(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    score(b, START + timedelta(weeks=2), 20)
    score(b, START + timedelta(weeks=8), 18)
    c = FailedTrials(
        id="ft",
        text="one failed trial, ≤ 25 % improvement",
        min_count=1,
        min_weeks=6,
        failure=Failure(max_improvement_pct=25, scores_required=True),
    )
    r = judge(b, c, kb)
    assert r.status == "met"
    assert (r.evidence[1].on, r.evidence[1].summary) == (
        START + timedelta(weeks=2),
        "PHQ-9 20 — baseline of the sertraline trial",
    )


def test_a_maximal_dose_rule_without_a_dose_lacks_data(kb):
    c = two_trials().model_copy(update={"dose_level": "maximal"})
    r = judge(a_history().trial("sertraline", None).trial("venlafaxine", 225), c, kb)
    assert r.status == "missing"
    assert r.missing == ("sertraline (2022-02-01): dose not recorded",)


def test_a_trial_starting_after_the_request_date_is_not_looked_at(kb):
    b = a_history().trial("sertraline", 150).trial("venlafaxine", 225)
    r = judge(b, two_trials(), kb, request=date(2022, 4, 1))
    assert r.evidence[1].why_not == "starts after the request date 2022-04-01"


def test_a_look_back_counts_calendar_years_or_days(kb):
    b = a_history().trial("sertraline", 150, start=date(2022, 3, 1))
    one = FailedTrials(
        id="ft",
        text="one failed trial",
        min_count=1,
        min_weeks=6,
        window=Window(scope="lookback", years=2),
    )
    assert judge(b, one, kb, request=date(2024, 2, 29)).status == "met"  # from 2022-02-28
    half = one.model_copy(update={"window": Window(scope="lookback", years=1.5)})
    r = judge(b, half, kb, request=date(2024, 2, 29))
    assert r.evidence[0].why_not == "started before the 1.5-year look-back (from 2022-08-30)"


def test_a_baseline_of_zero_or_scores_on_another_scale_say_so(kb):
    zero = _scored_trials((0, 0), (20, 16))
    r = judge(zero, two_trials(max_improvement_pct=25, scores_required=True), kb)
    assert r.status == "missing"
    assert r.missing == (
        "sertraline (2022-02-01): PHQ-9 baseline of 0, so no percent change to show "
        "≤ 25 % improvement",
    )
    r = judge(zero, two_trials(max_improvement_pct=25), kb)
    assert "recorded outcome (PHQ-9 baseline of 0): no response" in r.evidence[0].summary
    derived = a_history().trial("sertraline", 150, outcome="unknown")
    score(derived, START, 20)
    score(derived, START + timedelta(weeks=8), 19)
    madrs = FailedTrials(
        id="ft",
        text="one failed trial on the MADRS",
        min_count=1,
        min_weeks=6,
        failure=Failure(max_improvement_pct=25, instruments=("madrs",)),
    )
    r = judge(derived, madrs, kb)
    assert r.status == "met"
    assert "outcome derived from another scale's scores: no response" in r.evidence[0].summary


# --- augmentation trials ------------------------------------------------------------------------


def _augmented(agent: str, mg: float, **extra: Any) -> HistoryBuilder:
    b = a_history().trial("sertraline", 150, weeks=20)
    b.trial(agent, mg, weeks=8, start=START + timedelta(weeks=10), augments="sertraline", **extra)
    return b


def test_an_augmentation_trial_counts_when_its_agent_or_class_is_accepted(kb):
    by_class = AugmentationTrials(
        id="aug",
        text="one failed augmentation",
        min_count=1,
        min_weeks=6,
        agents=("atypical_antipsychotic",),
    )
    r = judge(_augmented("aripiprazole", 5), by_class, kb)
    assert r.status == "met"
    assert counted(r) == ["treatments[1]"]
    lithium_only = by_class.model_copy(update={"agents": ("lithium",)})
    r = judge(_augmented("aripiprazole", 5), lithium_only, kb)
    assert r.status == "not_met"
    assert r.evidence == ()


def test_lithium_without_a_serum_level_lacks_data(kb):
    c = AugmentationTrials(id="aug", text="one failed augmentation", min_count=1, min_weeks=6)
    r = judge(_augmented("lithium", 900), c, kb)
    assert r.status == "missing"
    assert "no serum level recorded" in r.missing[0]
    assert judge(_augmented("lithium", 900, serum_level=0.6), c, kb).status == "met"
    assert judge(_augmented("lithium", 900, serum_level=0.3), c, kb).status == "not_met"


def test_a_short_augmentation_trial_does_not_count(kb):
    c = AugmentationTrials(id="aug", text="one failed augmentation", min_count=1, min_weeks=10)
    r = judge(_augmented("aripiprazole", 5), c, kb)
    assert r.status == "not_met"
    assert r.evidence[0].why_not == "8.0 weeks at an adequate dose; 10 needed"


def test_an_augmentation_stopped_for_intolerance_counts_only_when_accepted(kb):
    c = AugmentationTrials(id="aug", text="one failed augmentation", min_count=1, min_weeks=6)
    b = _augmented("aripiprazole", 5, outcome="intolerance")
    assert judge(b, c, kb).status == "met"
    strict = c.model_copy(update={"failure": Failure(intolerance_counts=False)})
    assert judge(b, strict, kb).status == "not_met"


# --- psychotherapy ------------------------------------------------------------------------------


def therapy(b: HistoryBuilder, **fields: Any) -> HistoryBuilder:
    t = {
        "type": "psychotherapy",
        "modality": "cbt",
        "start": date(2023, 1, 1),
        "stop": date(2023, 4, 1),
        "sessions": 12,
        "outcome": "no_response",
    }
    return b.treatment(**{**t, **fields})


PSYCHOTHERAPY = PsychotherapyTrial(
    id="psychotherapy", text="a failed trial of psychotherapy", min_sessions=8, min_weeks=8
)


def test_a_failed_psychotherapy_trial_meets_the_criterion(kb):
    r = judge(therapy(a_history()), PSYCHOTHERAPY, kb)
    assert r.status == "met"
    assert counted(r, "psychotherapy") == ["treatments[0]"]


def test_psychotherapy_without_a_session_count_names_what_is_missing(kb):
    r = judge(therapy(a_history(), sessions=None), PSYCHOTHERAPY, kb)
    assert r.status == "missing"
    assert r.missing == (
        "psychotherapy (CBT, 2023-01-01): dates recorded, number of sessions missing",
    )


def test_psychotherapy_falls_short_on_sessions_weeks_modality_or_response(kb):
    cases: dict[str, dict[str, Any]] = {
        "6 sessions; 8 needed": {"sessions": 6},
        "7.9 weeks; 8 needed": {"stop": date(2023, 2, 25)},
        "outcome response, not an inadequate response": {"outcome": "response"},
    }
    for why, fields in cases.items():
        r = judge(therapy(a_history(), **fields), PSYCHOTHERAPY, kb)
        assert r.status == "not_met", why
        assert r.evidence[0].why_not == why
    ipt_only = PSYCHOTHERAPY.model_copy(update={"modalities": ("ipt",)})
    r = judge(therapy(a_history()), ipt_only, kb)
    assert r.status == "not_met"
    assert "CBT is not among the modalities accepted (IPT)" in (r.evidence[0].why_not or "")


def test_exactly_the_minimum_weeks_of_psychotherapy_count(kb):
    r = judge(therapy(a_history(), stop=date(2023, 2, 26)), PSYCHOTHERAPY, kb)
    assert r.status == "met"


def test_psychotherapy_of_unknown_outcome_or_unnamed_modality_lacks_data(kb):
    r = judge(therapy(a_history(), outcome="unknown"), PSYCHOTHERAPY, kb)
    assert r.status == "missing"
    assert "outcome not recorded" in r.missing[0]
    r = judge(therapy(a_history(), modality="other"), PSYCHOTHERAPY, kb)
    assert r.status == "missing"
    assert "modality recorded as 'other'" in r.missing[0]


def test_no_psychotherapy_on_record_is_not_met(kb):
    r = judge(a_history(), PSYCHOTHERAPY, kb)
    assert r.status == "not_met"
    assert r.reason.startswith("no psychotherapy recorded")


def test_psychotherapy_outside_the_window_is_shown_not_counted(kb):
    b = therapy(a_history().trial("sertraline", 150), start=date(2019, 1, 1), stop=date(2019, 6, 1))
    episode = PSYCHOTHERAPY.model_copy(update={"window": Window()})
    r = judge(b, episode, kb)
    assert r.status == "not_met"
    assert r.evidence[0].why_not == "ended before the current episode began (2022-01-01)"


# --- baseline severity --------------------------------------------------------------------------

SEVERITY = BaselineSeverity(
    id="baseline",
    text="PHQ-9 ≥ 15 or MADRS ≥ 20 within 30 days",
    thresholds=(
        ScoreThreshold(instrument="phq9", min_total=15),
        ScoreThreshold(instrument="madrs", min_total=20),
    ),
    within_days=30,
)


def test_a_recent_score_at_the_threshold_meets_the_criterion(kb):
    r = judge(score(a_history(), AS_OF - timedelta(days=3), 15), SEVERITY, kb)
    assert r.status == "met"
    assert counted(r, "score") == ["measurements[0]"]


def test_a_recent_score_below_the_threshold_is_not_met(kb):
    r = judge(score(a_history(), AS_OF - timedelta(days=3), 14), SEVERITY, kb)
    assert r.status == "not_met"
    assert r.evidence[0].why_not == "below PHQ-9 ≥ 15"


def test_no_recent_score_is_missing_data_and_says_which(kb):
    r = judge(score(a_history(), AS_OF - timedelta(days=31), 22), SEVERITY, kb)
    assert r.status == "missing"
    assert r.missing == ("no PHQ-9 or MADRS within 30 days before 2024-06-01",)
    assert r.evidence[0].why_not == "31 days before the request; within 30 needed"


def test_a_score_on_exactly_the_30th_day_counts(kb):
    r = judge(score(a_history(), AS_OF - timedelta(days=30), 22), SEVERITY, kb)
    assert r.status == "met"


def test_an_exclusive_threshold_is_not_met_by_a_score_equal_to_it(kb):
    strict = SEVERITY.model_copy(
        update={"thresholds": (ScoreThreshold(instrument="phq9", min_total=20, inclusive=False),)}
    )
    assert judge(score(a_history(), AS_OF, 20), strict, kb).status == "not_met"
    assert judge(score(a_history(), AS_OF, 21), strict, kb).status == "met"


def test_the_latest_recent_score_decides(kb):
    b = score(a_history(), AS_OF - timedelta(days=20), 24, "MADRS")
    r = judge(score(b, AS_OF - timedelta(days=2), 12), SEVERITY, kb)
    assert r.status == "not_met"
    assert r.evidence[1].why_not == "a later score (2024-05-30) decides"


def test_a_score_after_the_request_date_is_not_read(kb):
    b = score(a_history(), AS_OF + timedelta(days=2), 22)
    b.data["assessed_on"] = AS_OF + timedelta(days=5)
    history = b.build()
    r = evaluate_policy(a_policy(SEVERITY), history, assess(history, kb), kb, AS_OF)
    assert r.results[0].status == "missing"
    assert any("trial durations" in n for n in r.notes)


# --- age ----------------------------------------------------------------------------------------

ADULT = Age(id="age", text="18 years or older", min_years=18)


def _born(day: date | None) -> HistoryBuilder:
    b = a_history()
    b.data["patient"]["birth_date"] = day
    return b


def test_age_on_the_request_date(kb):
    assert judge(_born(date(2006, 6, 1)), ADULT, kb).status == "met"  # 18 today
    r = judge(_born(date(2006, 6, 2)), ADULT, kb)
    assert r.status == "not_met"
    assert r.reason == "17 years old on the request date; 18 years or older needed."
    senior = Age(id="age", text="18 to 65 years", min_years=18, max_years=65)
    assert judge(_born(date(1950, 1, 1)), senior, kb).status == "not_met"
    young = Age(id="age", text="65 or younger", max_years=65)
    assert judge(_born(date(1959, 6, 1)), young, kb).status == "met"  # 65 today
    anyone = Age(id="age", text="no age limit")
    assert judge(_born(date(1930, 1, 1)), anyone, kb).reason.endswith("any age needed.")


def test_age_without_a_birth_date_is_missing(kb):
    r = judge(_born(None), ADULT, kb)
    assert r.status == "missing"
    assert r.missing == ("patient's birth date",)


# --- exclusions ---------------------------------------------------------------------------------

EXCLUSIONS = Exclusions(
    id="exclusions",
    text="no bipolar disorder, psychosis, seizures or implants",
    diagnoses=("bipolar_i_depression", "bipolar_ii_depression"),
    psychotic_features=True,
    conditions=("seizure_disorder", "ferromagnetic_implant_head", "substance_use_disorder"),
)


def test_no_exclusion_on_record_is_met_and_says_how_many_conditions_were_read(kb):
    b = a_history().condition("hypertension", "controlled").condition("insomnia")
    r = judge(b, EXCLUSIONS, kb)
    assert r.status == "met"
    assert r.reason.startswith("no excluded diagnosis or condition on record")
    assert "2 conditions recorded, none excluded" in r.reason


def test_an_excluded_diagnosis_psychosis_or_condition_is_not_met_and_named(kb):
    r = judge(a_history().episode(diagnosis="bipolar_ii_depression"), EXCLUSIONS, kb)
    assert (r.status, r.reason) == ("not_met", "excluded: bipolar II depression.")
    r = judge(a_history().episode(severity="severe_psychotic"), EXCLUSIONS, kb)
    assert (r.status, r.reason) == ("not_met", "excluded: psychotic features.")
    r = judge(a_history().condition("seizure_disorder"), EXCLUSIONS, kb)
    assert (r.status, r.reason) == ("not_met", "excluded: seizure disorder / epilepsy.")
    assert r.evidence[0].ref == "conditions[0]"


def test_a_resolved_condition_or_substance_use_in_remission_is_shown_but_not_excluding(kb):
    b = a_history().condition("seizure_disorder", "resolved")
    b.condition("substance_use_disorder", "remission")
    r = judge(b, EXCLUSIONS, kb)
    assert r.status == "met"
    why = [e.why_not for e in r.evidence if e.kind == "condition"]
    assert why[0] == "not counted: status 'resolved' (not present)"
    assert why[1] == "status remission: not active"


# --- concurrent treatment -----------------------------------------------------------------------


def _ongoing(b: HistoryBuilder, **fields: Any) -> HistoryBuilder:
    return b.treatment(start=AS_OF - timedelta(weeks=4), **fields)


def test_a_barred_treatment_ongoing_on_the_request_date_is_not_met(kb):
    c = ConcurrentTreatment(
        id="concurrent", text="not with ECT or ketamine", barred=("ect", "ketamine")
    )
    r = judge(_ongoing(a_history(), type="ect", sessions=6), c, kb)
    assert r.status == "not_met"
    assert "ECT (treatments[0])" in r.reason
    stopped = a_history().treatment(
        type="ect", start=AS_OF - timedelta(weeks=8), stop=AS_OF, sessions=12
    )
    r = judge(stopped, c, kb)
    assert (r.status, r.reason) == ("met", "no ECT or ketamine ongoing on 2024-06-01.")


def _on_drug(drug: str, mg: float, **kw: Any) -> HistoryBuilder:
    b = a_history().trial("sertraline", 150)
    b.data["treatments"].append(
        {
            "type": "medication",
            "drug": drug,
            "start": AS_OF - timedelta(weeks=3),
            "doses": [{"from": AS_OF - timedelta(weeks=3), "mg_per_day": mg}],
            "adherence": 0.9,
            **kw,
        }
    )
    return b


def test_an_oral_antidepressant_is_required_alongside_and_not_a_failed_one(kb):
    c = ConcurrentTreatment(
        id="concurrent",
        text="with a new oral antidepressant",
        requires_oral_antidepressant=True,
        oral_antidepressant_not_failed=True,
    )
    r = judge(_on_drug("venlafaxine", 150), c, kb)
    assert (r.status, r.reason) == ("met", "oral antidepressant ongoing: venlafaxine.")
    r = judge(_on_drug("sertraline", 150), c, kb)
    assert r.status == "not_met"
    assert "already failed" in r.reason
    r = judge(a_history().trial("sertraline", 150), c, kb)
    assert r.status == "not_met"
    assert r.reason.startswith("no oral antidepressant ongoing on 2024-06-01")


def test_ketamine_recorded_as_a_medication_is_barred_as_ketamine(kb):
    c = ConcurrentTreatment(id="concurrent", text="not with ketamine", barred=("ketamine",))
    r = judge(_on_drug("ketamine", 35), c, kb)
    assert r.status == "not_met"
    assert "barred by the policy: ketamine" in r.reason


# --- course limit -------------------------------------------------------------------------------

RENEWAL = CourseLimit(
    id="renewal",
    text="renewal after a ≥ 50 % PHQ-9 improvement; at most 36 sessions",
    applies_to=("renewal",),
    max_sessions=36,
    renewal_min_improvement_pct=50,
    instruments=("phq9",),
)


def _course(base: float | None, end: float | None) -> HistoryBuilder:
    start = AS_OF - timedelta(weeks=6)
    b = a_history().treatment(type="rtms", start=start, stop=AS_OF, sessions=30, protocol="10hz")
    if base is not None:
        score(b, start - timedelta(days=2), base)
    if end is not None:
        score(b, AS_OF - timedelta(days=1), end)
    return b


def test_a_renewal_needs_the_improvement_from_the_course_baseline(kb):
    r = judge(_course(20, 10), RENEWAL, kb, kind="renewal")
    assert r.status == "met"  # exactly 50 %
    assert "at most 36" not in r.reason and "must not exceed 36 sessions" in r.reason
    r = judge(_course(20, 11), RENEWAL, kb, kind="renewal")
    assert r.status == "not_met"
    assert [e.kind for e in r.evidence] == ["treatment", "score", "score"]


def test_a_renewal_without_course_scores_or_course_lacks_data(kb):
    r = judge(_course(20, None), RENEWAL, kb, kind="renewal")
    assert r.status == "missing"
    assert r.missing[0].startswith("no PHQ-9 score at the start of the rTMS course")
    r = judge(a_history(), RENEWAL, kb, kind="renewal")
    assert r.missing == ("no rTMS course recorded to judge the renewal",)


def test_a_renewal_criterion_does_not_apply_to_an_initial_request(kb):
    r = judge(_course(20, 10), RENEWAL, kb)
    assert r.status == "not_applicable"


def test_an_initial_course_limit_is_a_statement_for_the_request(kb):
    c = CourseLimit(id="sessions", text="up to 36 sessions", max_sessions=36)
    r = judge(a_history(), c, kb)
    assert r.status == "met"
    assert r.reason.startswith("the requested course must not exceed 36 sessions")
    empty = CourseLimit(id="sessions", text="course as prescribed")
    assert judge(a_history(), empty, kb).status == "not_applicable"


# --- attestations, the overall verdict, dates and alerts ----------------------------------------

ATTEST = Attestation(id="device", text="an FDA-cleared device", item="FDA-cleared TMS device")


def test_an_attestation_is_left_to_the_clinician_and_does_not_make_a_gap(kb):
    r = evaluate(a_history(), ADULT, ATTEST, kb=kb)
    device = r.results[1]
    assert (device.status, device.attestation) == ("missing", True)
    assert device.reason == "to be confirmed by the clinician"
    assert device.missing == ("FDA-cleared TMS device",)
    assert r.overall == "all_met"


def test_overall_is_not_met_before_gaps(kb):
    r = evaluate(_born(None), ADULT, two_trials(), kb=kb)
    assert [x.status for x in r.results] == ["missing", "not_met"]
    assert r.overall == "not_met"
    r = evaluate(_born(None), ADULT, kb=kb)
    assert r.overall == "gaps"
    assert r.counts() == {"met": 0, "not_met": 0, "missing": 1, "not_applicable": 0}


def test_a_request_no_criterion_applies_to_is_never_all_met(kb):
    r = evaluate(a_history(), ADULT, ATTEST, kb=kb, kind="renewal")
    assert [x.status for x in r.results] == ["not_applicable", "not_applicable"]
    assert r.overall == "gaps"
    assert any("no criterion of this policy" in n for n in r.notes)
    r = evaluate(a_history(), ATTEST, kb=kb)
    assert r.overall == "gaps"


def test_a_request_outside_the_effective_dates_is_noted(kb):
    r = evaluate(a_history(), ADULT, kb=kb, effective_from=date(2024, 7, 1))
    assert not r.in_effect
    assert any("before the policy took effect (2024-07-01)" in n for n in r.notes)
    r = evaluate(a_history(), ADULT, kb=kb, effective_to=date(2024, 1, 1), typical=True)
    assert not r.in_effect
    assert any("after the policy's end date" in n for n in r.notes)
    assert any("typical criteria" in n for n in r.notes)
    r = evaluate(a_history(), ADULT, kb=kb, effective_from=date(2024, 1, 1))
    assert r.in_effect and r.notes == ()


def test_suicide_risk_alerts_are_carried_with_the_result(kb):
    b = a_history()
    b.data["clinician_alerts"] = [
        {"date": AS_OF - timedelta(days=1), "severity": "high", "note": "plan disclosed"}
    ]
    r = evaluate(b, ADULT, kb=kb)
    assert [(a.code, a.severity, a.date) for a in r.alerts] == [
        ("suicide_risk", "high", AS_OF - timedelta(days=1))
    ]
    assert not any("suicide" in n for n in r.notes)  # shown once, from alerts


def test_the_result_names_the_policy(kb):
    r = evaluate(a_history(), ADULT, kb=kb, policy_number="CP.BH.200", url="https://example.org")
    assert r.policy_label == "Test Payer — rTMS for depression (CP.BH.200), version 2024-01"
    assert (r.policy_id, r.version, r.policy_url) == (
        "test_policy",
        "2024-01",
        "https://example.org",
    )
    assert r.citations == ("trdnav_conventions",)


def test_an_assessment_of_another_record_is_refused_with_the_field_named(kb):
    history = a_history().trial("sertraline", 150).build()
    other = a_history().build()
    with pytest.raises(ValueError, match=r"assessment\.trials"):
        evaluate_policy(a_policy(ADULT), other, assess(history, kb), kb, AS_OF)
    renamed = history.model_copy(update={"patient": history.patient.model_copy(update={"id": "X"})})
    with pytest.raises(ValueError, match=r"assessment\.patient_id"):
        evaluate_policy(a_policy(ADULT), renamed, assess(history, kb), kb, AS_OF)
    with pytest.raises(ValueError, match="kind"):
        evaluate_policy(a_policy(ADULT), history, assess(history, kb), kb, AS_OF, "repeat")  # type: ignore[arg-type]
