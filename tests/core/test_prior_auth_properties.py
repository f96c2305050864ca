"""Properties of the prior-authorisation evaluation over random records and random policies:
a failed adequate trial added to the record never costs a met criterion, and a criterion the
record cannot decide is never met."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from tests.builders import AS_OF, HistoryBuilder, a_history
from tests.strategies import ANTIDEPRESSANTS, builders
from trdnav.core.assessment import assess
from trdnav.core.history import History, Medication
from trdnav.core.prior_auth.evaluate import evaluate_policy
from trdnav.core.prior_auth.model import CriterionResult
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.knowledge.payers import (
    Age,
    BaselineSeverity,
    Criterion,
    FailedTrials,
    Failure,
    PayerPolicy,
    PsychotherapyTrial,
    ScoreThreshold,
    Window,
)

KB = default_knowledge()


@st.composite
def failures(draw: st.DrawFn) -> Failure:
    rule = draw(st.sampled_from(["none", "max", "below"]))
    return Failure(
        max_improvement_pct=25 if rule == "max" else None,
        below_improvement_pct=50 if rule == "below" else None,
        scores_required=draw(st.booleans()),
        intolerance_counts=draw(st.booleans()),
    )


@st.composite
def failed_trials(draw: st.DrawFn) -> FailedTrials:
    count = draw(st.integers(min_value=1, max_value=4))
    window = draw(
        st.sampled_from(
            [Window(), Window(scope="any"), Window(scope="lookback", years=2)],
        )
    )
    return FailedTrials(
        id="failed_trials",
        text="failed antidepressant trials",
        min_count=count,
        min_classes=draw(st.integers(min_value=1, max_value=count)),
        min_weeks=draw(st.sampled_from([4, 6, 8])),
        dose_level=draw(st.sampled_from(["adequate", "maximal"])),
        min_adherence=draw(st.sampled_from([None, 0.8])),
        window=window,
        failure=draw(failures()),
    )


def a_policy(*criteria: Criterion) -> PayerPolicy:
    return PayerPolicy(
        id="property_policy",
        payer="Test Payer",
        name="property test",
        treatment="esketamine",
        version="1",
        source=("trdnav_conventions",),
        verified=False,
        criteria=criteria,
    )


def judge(history: History, c: Criterion, kb: Knowledge, on: date) -> CriterionResult:
    history = history.model_copy(update={"assessed_on": on})
    return evaluate_policy(a_policy(c), history, assess(history, kb), kb, on).results[0]


def _counted(r: CriterionResult, history: History, kb: Knowledge) -> tuple[int, int]:
    """(trials counted, classes among them), read from the evidence rows."""
    drugs = set()
    for e in r.evidence:
        if e.kind == "trial" and e.counts:
            t = history.treatments[int(e.ref.removeprefix("treatments[").rstrip("]"))]
            assert isinstance(t, Medication)
            drug = kb.resolve_drug(t.drug)
            assert drug is not None
            drugs.add(drug.id)
    return len(drugs), len({kb.drugs[d].drug_class for d in drugs})


def _add_failed_trial(b: HistoryBuilder, drug: str, weeks: float) -> date:
    """A failed adequate trial of ``drug`` well after every other one (so its scores fall in no
    other trial's window) and shortly before the request (so it lies in every window): at the
    usual maximum dose, fully taken, PHQ-9 unchanged. Returns the date on which to ask."""
    dose = KB.drugs[drug].antidepressant_dose
    assert dose is not None
    start = max(b.cursor + timedelta(days=90), AS_OF - timedelta(days=round(weeks * 7) + 30))
    b.trial(drug, dose.usual_max_mg_per_day, weeks=weeks, adherence=1.0, start=start)
    stop = start + timedelta(days=round(weeks * 7))
    for day in (start, stop):
        b.data["measurements"].append({"instrument": "PHQ-9", "date": day, "total": 20})
    return max(AS_OF, stop + timedelta(days=1))


@given(builders(max_trials=5), failed_trials(), st.data())
def test_adding_a_failed_adequate_trial_never_costs_a_met_criterion(b, c, data):
    used = set()
    for t in b.build().treatments:
        drug = KB.resolve_drug(t.drug) if isinstance(t, Medication) else None
        if drug is not None:
            used.add(drug.drug_class)
    fresh = [d for d in ANTIDEPRESSANTS if KB.drugs[d].drug_class not in used]
    assume(fresh)
    drug = data.draw(st.sampled_from(fresh))
    before_history = b.build()
    on = _add_failed_trial(b, drug, weeks=max(c.min_weeks, 8))
    after_history = b.build()
    before = judge(before_history, c, KB, on)
    after = judge(after_history, c, KB, on)
    if before.status == "met":
        assert after.status == "met", after.reason
    if before.status == "not_met" and after.status == "met":
        trials, classes = _counted(before, before_history, KB)
        assert trials >= c.min_count - 1 and classes >= c.min_classes - 1, before.reason
    assert _counted(after, after_history, KB)[0] == _counted(before, before_history, KB)[0] + 1


@given(builders(max_trials=5), failed_trials())
def test_a_met_failed_trials_criterion_rests_only_on_trials_with_the_data_it_needs(b, c):
    history = b.build()
    r = judge(history, c, KB, AS_OF)
    if r.status != "met":
        return
    trials, classes = _counted(r, history, KB)
    assert trials >= c.min_count and classes >= c.min_classes
    for e in r.evidence:
        if e.kind != "trial" or not e.counts:
            continue
        t = history.treatments[int(e.ref.removeprefix("treatments[").rstrip("]"))]
        assert isinstance(t, Medication)
        if t.outcome.value == "intolerance":
            assert c.failure.intolerance_counts
            continue
        assert t.doses, e.summary
        assert c.min_adherence is None or t.adherence is not None, e.summary
        assert t.outcome.value in ("no_response", "partial_response", "response_lost")
        # the random records hold no scores: a rule that requires them can never be met
        rule = c.failure.max_improvement_pct or c.failure.below_improvement_pct
        assert not (rule and c.failure.scores_required), e.summary


def _with(b: HistoryBuilder, **patient: Any) -> HistoryBuilder:
    b.data["patient"].update(patient)
    return b


def _undecidable() -> list[tuple[str, Criterion, HistoryBuilder]]:
    return [
        (
            "failed trials of unknown outcome",
            FailedTrials(id="t", text="two failed trials", min_count=2, min_weeks=6),
            a_history()
            .trial("sertraline", 150, outcome="unknown")
            .trial("venlafaxine", 225, outcome="unknown"),
        ),
        (
            "failed trials without doses",
            FailedTrials(id="t", text="two failed trials", min_count=2, min_weeks=6),
            a_history().trial("sertraline", None).trial("venlafaxine", None),
        ),
        (
            "failed trials without scores the policy requires",
            FailedTrials(
                id="t",
                text="two failed trials",
                min_count=2,
                min_weeks=6,
                failure=Failure(max_improvement_pct=25, scores_required=True),
            ),
            a_history().trial("sertraline", 150).trial("venlafaxine", 225),
        ),
        (
            "psychotherapy without sessions",
            PsychotherapyTrial(id="p", text="failed psychotherapy", min_sessions=8),
            a_history().treatment(
                type="psychotherapy",
                modality="cbt",
                start=date(2023, 1, 1),
                stop=date(2023, 4, 1),
                outcome="no_response",
            ),
        ),
        (
            "baseline severity without a recent score",
            BaselineSeverity(
                id="s",
                text="PHQ-9 ≥ 15 within 30 days",
                thresholds=(ScoreThreshold(instrument="phq9", min_total=15),),
                within_days=30,
            ),
            a_history(),
        ),
        (
            "age without a birth date",
            Age(id="a", text="adults only", min_years=18),
            _with(a_history(), birth_date=None),
        ),
    ]


def test_a_criterion_the_record_cannot_decide_is_never_met(kb):
    for label, c, b in _undecidable():
        r = judge(b.build(), c, kb, AS_OF)
        assert r.status == "missing", label
        assert r.missing, label
