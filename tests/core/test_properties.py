"""Invariants of the rules, over random histories."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.builders import HistoryBuilder
from tests.strategies import ANTIDEPRESSANTS, builders
from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.knowledge.load import default_knowledge

KB = default_knowledge()


def _levels(a: Assessment) -> dict[str, float]:
    s = a.staging
    return {
        "trd_count": a.trd.failed_adequate_trials,
        "thase_rush": s["thase_rush"].stage or 0,
        "mgh_s": s["mgh_s"].score or 0,
        "maudsley": s["maudsley"].score or 0,
        "european": s["european"].stage or 0,
    }


def _summary(a: Assessment) -> Any:
    trials = sorted(
        (
            v.drug,
            v.start,
            v.adequate is True,
            v.adequate is None,
            v.weeks_at_adequate_dose,
            v.counts_as_failure,
        )
        for v in a.trials
    )
    return (
        a.trd.status,
        a.trd.failed_adequate_trials,
        sorted(a.trd.flags),
        trials,
        {k: (v.stage, v.score, v.band, v.label) for k, v in a.staging.items()},
    )


@given(builders(), st.sampled_from(ANTIDEPRESSANTS))
def test_adding_a_failed_adequate_trial_never_lowers_any_stage(b: HistoryBuilder, drug: str):
    before = _levels(assess(b.build(), KB))
    top = KB.drugs[drug].antidepressant_dose.usual_max_mg_per_day  # type: ignore[union-attr]
    after = _levels(assess(b.trial(drug, top, weeks=8, adherence=1.0).build(), KB))
    for key, value in before.items():
        assert after[key] >= value, key


@given(
    builders(),
    st.sampled_from(ANTIDEPRESSANTS),
    st.sampled_from(["dose", "duration", "adherence", "intolerance"]),
)
def test_an_inadequate_trial_never_changes_the_trd_count(b: HistoryBuilder, drug: str, why: str):
    before = assess(b.build(), KB).trd
    dose = KB.drugs[drug].antidepressant_dose
    assert dose is not None
    kw: dict[str, Any] = {
        "mg": dose.min_adequate_mg_per_day,
        "weeks": 8,
        "adherence": 1.0,
        "outcome": "no_response",
    }
    if why == "dose":
        kw["mg"] = dose.min_adequate_mg_per_day * 0.5
    elif why == "duration":
        kw["weeks"] = 3
    elif why == "adherence":
        kw["adherence"] = 0.5
    else:
        kw["outcome"] = "intolerance"
    after = assess(b.trial(drug, **kw).build(), KB)
    assert after.trials[-1].adequate is False
    assert after.trd.failed_adequate_trials == before.failed_adequate_trials


@given(builders(), st.randoms(use_true_random=False))
def test_the_order_of_treatments_never_changes_the_result(b: HistoryBuilder, rnd: Any):
    data = b.raw()
    shuffled = dict(data, treatments=list(data["treatments"]))
    rnd.shuffle(shuffled["treatments"])
    a1 = assess(History.model_validate(data), KB)
    a2 = assess(History.model_validate(shuffled), KB)
    assert _summary(a1) == _summary(a2)
