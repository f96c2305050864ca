"""Trajectories and derived trial outcomes: each rule at its boundary, computed by hand.

PHQ-9 figures from the knowledge base: response = reduction ≥ 50 %, remission = total ≤ 4,
reliability SD 6.0, r 0.84, so S_diff = √2 · 6 · √0.16 = 3.394 and a change is reliable when
|change| / 3.394 > 1.96, i.e. |change| ≥ 7 points (6.653 needed). Plateau window 6 weeks, sustained
remission 2 consecutive scores, trial grace 7 days, partial response ≥ 25 %.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.builders import AS_OF, HistoryBuilder, a_history
from trdnav.core.history import History, Outcome
from trdnav.core.measures import ScoredMeasurement, score_measurements
from trdnav.core.trajectory import (
    TRIAL_OUTCOME_INSTRUMENTS,
    Trajectory,
    derive_trial_outcome,
    trajectories,
    trajectory,
)
from trdnav.knowledge.load import Knowledge, default_knowledge

KB = default_knowledge()
DAY0 = date(2024, 1, 1)
S_DIFF = math.sqrt(2) * 6.0 * math.sqrt(1 - 0.84)


def _day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def _with(
    totals: list[tuple[int, float]], instrument: str = "PHQ-9", b: HistoryBuilder | None = None
) -> HistoryBuilder:
    """Scores given as (day after DAY0, total)."""
    b = b or a_history()
    for day, total in totals:
        b.data["measurements"].append({"instrument": instrument, "date": _day(day), "total": total})
    return b


def _traj(kb: Knowledge, b: HistoryBuilder, name: str = "PHQ-9", **kw: Any) -> Trajectory:
    h = b.build()
    return trajectories(h, score_measurements(h, kb), kb, **kw)[name]


def _phq(kb: Knowledge, *totals: float, every: int = 14, **kw: Any) -> Trajectory:
    return _traj(kb, _with([(k * every, t) for k, t in enumerate(totals)]), **kw)


# --- baseline and percent change -----------------------------------------------------------------


def test_the_baseline_is_the_first_score_of_the_episode(kb):
    b = _with([(0, 20), (14, 15)])
    b.data["measurements"].append({"instrument": "PHQ-9", "date": date(2021, 6, 1), "total": 3})
    t = _traj(kb, b)
    assert t.baseline is not None and t.baseline.date == DAY0
    assert t.percent_change == -25.0
    assert [p.date for p in t.points] == [_day(0), _day(14)]
    assert t.points[0].band == "severe" and t.points[1].band == "moderately severe"


def test_without_a_score_in_the_episode_the_first_score_is_the_baseline(kb):
    b = a_history().episode(onset=date(2024, 5, 1))
    t = _traj(kb, _with([(0, 20), (14, 10)], b=b))
    assert t.baseline is not None and t.baseline.date == DAY0
    assert any("no PHQ-9 score since the episode onset" in e for e in t.explanations)


def test_a_treatment_trajectory_starts_at_the_treatment(kb):
    h = _with([(0, 20), (14, 18), (28, 9)]).build()
    t = trajectory(score_measurements(h, kb), kb, "phq9", h, since=_day(10))
    assert t is not None and t.baseline is not None
    assert (t.baseline.total, t.percent_change, t.response) == (18, -50.0, True)
    assert trajectory(score_measurements(h, kb), kb, "phq9", h, since=_day(29)) is None


def test_one_score_gives_no_change_but_a_remission_state(kb):
    t = _phq(kb, 3)
    assert (t.percent_change, t.response, t.time_to_response_days) == (None, None, None)
    assert (t.remission, t.sustained_remission, t.relapse_on) == (True, False, None)
    assert (t.reliable_change, t.rci, t.plateau) == ("not_available", None, None)


def test_a_baseline_of_zero_has_no_percent_change_or_response(kb):
    t = _phq(kb, 0, 2)
    assert (t.percent_change, t.response, t.remission) == (None, None, True)


# --- response and remission ---------------------------------------------------------------------


def test_exactly_half_the_baseline_is_a_response(kb):
    t = _phq(kb, 20, 10)
    assert (t.percent_change, t.response) == (-50.0, True)
    m = _traj(kb, _with([(0, 58), (14, 29)], "MADRS"), "MADRS")
    assert (m.percent_change, m.response) == (-50.0, True)


def test_a_reduction_just_under_half_is_not_a_response(kb):
    m = _traj(kb, _with([(0, 59), (14, 30)], "MADRS"), "MADRS")  # 29/59 = 49.15 %
    assert (m.percent_change, m.response) == (-49.2, False)
    assert _phq(kb, 27, 14).response is False  # 13/27 = 48.1 %


def test_remission_is_a_total_at_or_below_the_cutoff(kb):
    assert _phq(kb, 20, 4).remission is True
    assert _phq(kb, 20, 5).remission is False
    assert _traj(kb, _with([(0, 30), (14, 10)], "MADRS"), "MADRS").remission is True
    assert _traj(kb, _with([(0, 30), (14, 11)], "MADRS"), "MADRS").remission is False


def test_time_to_response_counts_days_from_baseline_to_the_first_responding_score(kb):
    t = _traj(kb, _with([(0, 20), (28, 11), (42, 10), (56, 12), (70, 9)]))
    assert t.time_to_response_days == 42
    assert t.response is True  # 9 is again ≥ 50 % below 20
    assert _phq(kb, 20, 11, 12).time_to_response_days is None


# --- sustained remission and relapse ------------------------------------------------------------


def test_sustained_remission_needs_two_consecutive_remitted_scores(kb):
    assert _phq(kb, 20, 4, 3).sustained_remission is True
    assert _phq(kb, 20, 8, 4).sustained_remission is False
    assert _phq(kb, 20, 4, 8, 3).sustained_remission is False  # the latest run is 1 score


def test_a_relapse_is_a_score_above_remission_that_is_no_longer_a_response(kb):
    t = _phq(kb, 20, 4, 11)  # 11 > 4 and 9/20 = 45 % < 50 %
    assert t.relapse_on == _day(28)
    assert (t.remission, t.response, t.sustained_remission) == (False, False, False)


def test_losing_remission_while_still_responding_is_not_a_relapse(kb):
    assert _phq(kb, 20, 4, 10).relapse_on is None  # 10 is still 50 % below 20
    assert _phq(kb, 20, 10, 11).relapse_on is None  # remission was never reached


def test_the_latest_relapse_is_reported_and_a_regained_remission_said(kb):
    t = _phq(kb, 20, 4, 12, 3, 4, 15)
    assert t.relapse_on == _day(70)
    t = _phq(kb, 20, 4, 12, 3)
    assert t.relapse_on == _day(28) and t.remission is True
    assert any("remission regained" in e for e in t.explanations)


# --- reliable change ----------------------------------------------------------------------------


def test_a_seven_point_fall_is_reliable_improvement(kb):
    t = _phq(kb, 20, 13)
    assert t.rci == round(-7 / S_DIFF, 2) == -2.06
    assert t.reliable_change == "improved"
    assert "jacobson_truax_1991" in t.citations and "kroenke_2001" in t.citations
    assert t.verified is False  # the PHQ-9 reliability figures are unverified


def test_a_six_point_fall_is_not_reliable_change(kb):
    t = _phq(kb, 20, 14)
    assert t.rci == round(-6 / S_DIFF, 2) == -1.77
    assert t.reliable_change == "no_reliable_change"


def test_a_seven_point_rise_is_reliable_worsening(kb):
    t = _phq(kb, 10, 17)
    assert (t.rci, t.reliable_change) == (2.06, "worsened")
    assert _phq(kb, 10, 16).reliable_change == "no_reliable_change"


def test_instruments_without_reliability_or_outcomes_still_get_a_trajectory(kb):
    t = _traj(kb, _with([(0, 16), (14, 8)], "GAD-7"), "GAD-7")
    assert (t.percent_change, t.latest and t.latest.band) == (-50.0, "mild")
    assert (t.response, t.remission, t.sustained_remission, t.relapse_on) == (
        None,
        None,
        None,
        None,
    )
    assert (t.reliable_change, t.rci, t.plateau) == ("not_available", None, None)
    assert "jacobson_truax_1991" not in t.citations


def test_unscored_instruments_are_skipped(kb):
    b = _with([(0, 20)])
    b.data["measurements"].append(
        {"instrument": "C-SSRS", "date": _day(0), "items": [0, 0, None, None, None, 0, None]}
    )
    h = b.build()
    scored = score_measurements(h, kb)
    assert set(trajectories(h, scored, kb)) == {"PHQ-9"}
    assert trajectory(scored, kb, "cssrs_screener", h) is None


# --- plateau ------------------------------------------------------------------------------------


def test_six_weeks_without_reliable_change_on_unchanged_treatment_is_a_plateau(kb):
    t = _traj(kb, _with([(0, 20), (28, 18), (42, 15)]))  # spread 5 < 6.65
    assert t.plateau is True
    assert "trdnav_conventions" in t.citations


def test_a_reliable_change_inside_the_window_is_no_plateau(kb):
    assert _traj(kb, _with([(0, 20), (28, 18), (42, 13)])).plateau is False  # spread 7


def test_the_plateau_window_is_the_last_six_weeks(kb):
    # 26 -> 16 is reliable, but 17, 16, 15 over the last 6 weeks are not
    t = _traj(kb, _with([(0, 26), (14, 17), (42, 16), (56, 15)]))
    assert t.plateau is True
    assert _traj(kb, _with([(0, 20), (41, 18)])).plateau is None  # 41 days < 6 weeks


def test_a_treatment_change_restarts_the_plateau_clock(kb):
    def with_change(**t: Any) -> bool | None:
        b = a_history().treatment(type="medication", drug="sertraline", **t)
        return _traj(kb, _with([(0, 20), (28, 18), (42, 15)], b=b)).plateau

    assert with_change(start=date(2023, 6, 1)) is True
    assert with_change(start=_day(14)) is None
    dose_step = [
        {"from": date(2023, 6, 1), "mg_per_day": 50},
        {"from": _day(1), "mg_per_day": 100},
    ]
    assert with_change(start=date(2023, 6, 1), doses=dose_step) is None
    assert with_change(start=date(2023, 6, 1), stop=_day(20)) is None


def test_the_plateau_window_can_be_shortened(kb):
    b = a_history().treatment(type="rtms", start=_day(14))
    t = _traj(kb, _with([(0, 20), (14, 18), (42, 15)], b=b), plateau_weeks=4)
    assert t.plateau is True
    assert any("clinic setting" in e for e in t.explanations)


# --- derived trial outcomes ---------------------------------------------------------------------

START, STOP = _day(10), _day(70)


def _derive(kb: Knowledge, totals: list[tuple[int, float]], instrument: str = "PHQ-9") -> Any:
    h = _with(totals, instrument).build()
    return derive_trial_outcome(score_measurements(h, kb), kb, START, STOP, AS_OF)


def test_a_trial_ending_at_or_below_the_cutoff_is_a_remission(kb):
    d = _derive(kb, [(1, 20), (40, 12), (77, 4)])  # day 77 = stop + 7 days grace
    assert d.outcome == Outcome.REMISSION
    assert (d.baseline.date, d.end_point.date, d.percent_change) == (_day(1), _day(77), -80.0)
    assert "psychserv_2020_mbc" in d.citations and "PHQ-9" in d.explanation


def test_a_trial_halving_the_score_is_a_response(kb):
    assert _derive(kb, [(1, 20), (70, 10)]).outcome == Outcome.RESPONSE


def test_a_quarter_reduction_is_a_partial_response(kb):
    d = _derive(kb, [(1, 20), (70, 15)])
    assert d.outcome == Outcome.PARTIAL_RESPONSE
    assert "fava_2003" in d.citations


def test_less_than_a_quarter_is_no_response(kb):
    assert _derive(kb, [(1, 20), (70, 16)]).outcome == Outcome.NO_RESPONSE


def test_one_score_derives_nothing(kb):
    assert _derive(kb, [(1, 20)]) is None
    assert _derive(kb, [(40, 20)]) is None


def test_the_window_ends_after_the_grace_days(kb):
    # the score 8 days after the stop is outside; the one inside decides
    assert _derive(kb, [(1, 20), (60, 16), (78, 4)]).outcome == Outcome.NO_RESPONSE


def test_without_a_score_before_the_start_the_first_score_inside_is_the_baseline(kb):
    d = _derive(kb, [(-5, 4), (20, 20), (70, 10)])  # day -5 is 15 days before the start
    assert d.baseline.date == _day(20) and d.outcome == Outcome.RESPONSE


def test_a_score_on_the_start_day_is_a_baseline_not_an_end_point(kb):
    assert _derive(kb, [(1, 20), (10, 18)]) is None
    assert _derive(kb, [(1, 20), (10, 18), (60, 9)]).baseline.date == START


def test_the_phq9_is_preferred_and_other_instruments_fill_in(kb):
    assert TRIAL_OUTCOME_INSTRUMENTS[0] == "phq9"
    b = _with([(1, 20), (70, 16)])
    _with([(1, 30), (70, 8)], "MADRS", b)
    h = b.build()
    d = derive_trial_outcome(score_measurements(h, kb), kb, START, STOP, AS_OF)
    assert d is not None and (d.instrument, d.outcome) == ("PHQ-9", Outcome.NO_RESPONSE)
    h = _with([(1, 30), (70, 8)], "MADRS", _with([(1, 20)])).build()
    d = derive_trial_outcome(score_measurements(h, kb), kb, START, STOP, AS_OF)
    assert d is not None and (d.instrument, d.outcome) == ("MADRS", Outcome.REMISSION)


def test_an_ongoing_trial_ends_at_the_assessment_date(kb):
    h = _with([(1, 20), (70, 10), (100, 4)]).build()
    scored = score_measurements(h, kb)
    d = derive_trial_outcome(scored, kb, START, None, _day(90))
    assert d is not None and d.end_point.date == _day(70)
    d = derive_trial_outcome(scored, kb, START, None, _day(100))
    assert d is not None and d.outcome == Outcome.REMISSION


# --- properties ---------------------------------------------------------------------------------


def _summary(ts: dict[str, Trajectory]) -> dict[str, Any]:
    """Everything except the measurement indices, which follow the row order by definition."""
    return {
        k: t.model_dump(exclude={"points", "baseline", "latest"})
        | {"points": [(p.date, p.total, p.band) for p in t.points]}
        for k, t in ts.items()
    }


series = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 27)),
    min_size=1,
    max_size=8,
    unique_by=lambda x: x[0],
)


@given(
    series,
    st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 60)), max_size=4, unique_by=lambda x: x[0]
    ),
    st.lists(st.integers(-30, 200), max_size=3),
    st.randoms(use_true_random=False),
)
def test_trajectories_do_not_depend_on_the_order_of_rows(
    phq: list[tuple[int, int]],
    madrs: list[tuple[int, int]],
    starts: list[int],
    rnd: random.Random,
) -> None:
    b = _with(phq)
    _with(madrs, "MADRS", b)
    for s in starts:
        b.treatment(type="ketamine", start=_day(s))
    h = b.build()
    scored = score_measurements(h, KB)
    expected = trajectories(h, scored, KB)
    shuffled_scored: list[ScoredMeasurement] = list(scored)
    rnd.shuffle(shuffled_scored)
    assert trajectories(h, shuffled_scored, KB) == expected
    rows, treatments = list(h.measurements), list(h.treatments)
    rnd.shuffle(rows)
    rnd.shuffle(treatments)
    h2 = History.model_validate(
        h.model_dump(by_alias=True) | {"measurements": rows, "treatments": treatments}
    )
    assert _summary(trajectories(h2, score_measurements(h2, KB), KB)) == _summary(expected)


@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 27)),
        min_size=2,
        max_size=8,
        unique_by=lambda x: x[0],
    ),
    st.integers(1, 27),
)
def test_lowering_the_latest_score_never_loses_a_response(
    phq: list[tuple[int, int]], drop: int
) -> None:
    phq = sorted(phq)
    before = _traj(KB, _with(phq))
    lowered = [*phq[:-1], (phq[-1][0], max(0, phq[-1][1] - drop))]
    after = _traj(KB, _with(lowered))
    if before.response:
        assert after.response is True
    if before.remission:
        assert after.remission is True
