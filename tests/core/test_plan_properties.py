"""Properties of the state-aware plan (issue 12), over random histories.

- a patient in remission on an ongoing treatment never gets a switch or an interventional option
  recommended (outside an urgent situation, where ECT stays first);
- history is never a safety verdict: a drug that failed an adequate trial makes an option
  ``already_tried``, and ``contraindicated`` always comes with a safety finding;
- a bipolar depression never gets antidepressant monotherapy or esketamine recommended.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import AS_OF, HistoryBuilder
from tests.strategies import ANTIDEPRESSANTS, builders
from trdnav.core.assessment import assess
from trdnav.knowledge.load import default_knowledge

KB = default_knowledge()
INTERVENTIONAL = frozenset({"switch", "neuromodulation", "rapid_acting", "specialist"})


def _ongoing_remission(b: HistoryBuilder, drug: str, weeks: int, base: int, last: int) -> None:
    """An ongoing trial at the usual maximum with PHQ-9 totals falling from ``base`` to ``last``."""
    dose = KB.drugs[drug].antidepressant_dose
    assert dose is not None
    start = AS_OF - timedelta(weeks=weeks)
    b.trial(drug, dose.usual_max_mg_per_day, start=start, adherence=0.9, outcome="unknown")
    b.data["treatments"][-1]["stop"] = None
    b.data["measurements"] += [
        {"instrument": "PHQ-9", "date": start - timedelta(days=3), "total": base},
        {"instrument": "PHQ-9", "date": AS_OF - timedelta(days=30), "total": last},
        {"instrument": "PHQ-9", "date": AS_OF - timedelta(days=2), "total": last},
    ]


@settings(max_examples=60, deadline=None)
@given(
    builders(max_trials=3),
    st.sampled_from(ANTIDEPRESSANTS),
    st.integers(min_value=8, max_value=40),
    st.integers(min_value=12, max_value=27),
    st.integers(min_value=0, max_value=4),
)
def test_remission_on_the_current_treatment_never_brings_a_switch_or_an_intervention(
    b: HistoryBuilder, drug: str, weeks: int, base: int, last: int
):
    b.episode(severity="moderate")  # not an urgent situation
    for t in b.data["treatments"]:  # earlier trials ended before this one began
        t["start"] = min(t["start"], AS_OF - timedelta(weeks=weeks + 30))
        t["stop"] = t["start"] + timedelta(weeks=8)
    _ongoing_remission(b, drug, weeks, base, last)
    a = assess(b.build(), KB)
    assert a.plan_context is not None and a.plan_context.step == "maintain_remission"
    assert a.options[0].id == "continue_current" and a.options[0].status == "recommended"
    for o in a.options:
        if o.category in INTERVENTIONAL or o.id == "ect":
            assert o.status != "recommended", (o.id, o.reasons)


@settings(max_examples=80, deadline=None)
@given(builders(max_trials=5))
def test_history_alone_never_makes_an_option_contraindicated(b: HistoryBuilder):
    a = assess(b.build(), KB)
    failed = {
        v.drug
        for v in a.trials
        if v.adequate and v.outcome.value in ("no_response", "partial_response")
    }
    for o in a.options:
        if o.status == "contraindicated":
            assert any(r.startswith("safety (contraindicated)") for r in o.reasons), o.reasons
        option = KB.options.options[o.id]
        if option.drugs and set(option.drugs) <= failed:
            assert o.status in ("already_tried", "contraindicated"), (o.id, o.status)


@settings(max_examples=60, deadline=None)
@given(builders(max_trials=4), st.sampled_from(["bipolar_i_depression", "bipolar_ii_depression"]))
def test_bipolar_depression_never_gets_antidepressant_monotherapy_or_esketamine(
    b: HistoryBuilder, diagnosis: str
):
    a = assess(b.episode(diagnosis=diagnosis).build(), KB)
    assert a.plan_context is not None and a.plan_context.ladder
    for o in a.options:
        if o.category == "switch" or o.id == "esketamine":
            assert o.status not in ("recommended", "consider", "caution"), (o.id, o.status)
    assert any(o.id.startswith("bipolar_") for o in a.options)
