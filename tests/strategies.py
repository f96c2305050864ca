"""Shared hypothesis strategies: random but valid treatment histories."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.builders import HistoryBuilder, a_history
from trdnav.knowledge.load import default_knowledge

_KB = default_knowledge()
ANTIDEPRESSANTS = sorted(
    d.id for d in _KB.drugs.values() if _KB.is_antidepressant(d) and d.dose_unit == "mg/day"
)
OUTCOMES = ["no_response", "partial_response", "response", "remission", "intolerance", "unknown"]


@st.composite
def trial_specs(draw: st.DrawFn) -> dict[str, Any]:
    drug = draw(st.sampled_from(ANTIDEPRESSANTS))
    dose = _KB.drugs[drug].antidepressant_dose
    assert dose is not None
    mg = draw(
        st.sampled_from(
            [
                dose.min_adequate_mg_per_day / 2,
                dose.min_adequate_mg_per_day,
                dose.usual_max_mg_per_day,
            ]
        )
    )
    return {
        "drug": drug,
        "mg": mg,
        "weeks": draw(st.integers(min_value=2, max_value=14)),
        "adherence": draw(st.sampled_from([None, 0.5, 0.79, 0.8, 1.0])),
        "outcome": draw(st.sampled_from(OUTCOMES)),
    }


@st.composite
def builders(draw: st.DrawFn, max_trials: int = 5) -> HistoryBuilder:
    b = a_history().episode(
        severity=draw(st.sampled_from(["mild", "moderate", "severe", "severe_psychotic"]))
    )
    for spec in draw(st.lists(trial_specs(), max_size=max_trials)):
        b.trial(**spec)
    if draw(st.booleans()):
        b.ect(outcome=draw(st.sampled_from(["no_response", "response"])))
    return b
