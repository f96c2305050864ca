"""Each packaged payer policy against hand-made records: one that passes, one that fails one
criterion, one that lacks one datum — read as someone who files these requests would."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import AS_OF, HistoryBuilder, a_history
from trdnav.core.assessment import assess
from trdnav.core.prior_auth.evaluate import evaluate_policy
from trdnav.core.prior_auth.model import PriorAuthResult
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.knowledge.payers import (
    Age,
    AugmentationTrials,
    BaselineSeverity,
    ConcurrentTreatment,
    FailedTrials,
    PayerPolicy,
    PsychotherapyTrial,
)

POLICIES = sorted(default_knowledge().payers)


def with_scores(b: HistoryBuilder, drug: str, mg: float, before: float, after: float) -> None:
    """A trial of ``drug`` with a PHQ-9 at its start and near its end (a ≤ 25 % improvement)."""
    start = b.cursor
    b.trial(drug, mg, weeks=8)
    b.data["measurements"].append({"instrument": "PHQ-9", "date": start, "total": before})
    b.data["measurements"].append(
        {"instrument": "PHQ-9", "date": start + timedelta(weeks=7), "total": after}
    )


def qualifying() -> HistoryBuilder:
    """What every packaged policy asks for, as a chart would hold it."""
    b = a_history()
    with_scores(b, "sertraline", 150, 22, 21)
    with_scores(b, "venlafaxine", 225, 21, 20)
    b.trial("aripiprazole", 5, weeks=8, augments="venlafaxine")
    b.trial("lithium", 900, weeks=8, augments="venlafaxine", serum_level=0.7)
    b.treatment(
        type="psychotherapy",
        modality="cbt",
        start=AS_OF - timedelta(weeks=40),
        stop=AS_OF - timedelta(weeks=24),
        sessions=16,
        outcome="no_response",
    )
    # taken now, alongside the requested treatment (not one already failed)
    b.trial("bupropion", 300, weeks=3, start=AS_OF - timedelta(weeks=3), outcome="unknown")
    b.data["treatments"][-1]["stop"] = None
    b.data["measurements"].append(
        {"instrument": "PHQ-9", "date": AS_OF - timedelta(days=5), "total": 21}
    )
    return b


def check(kb: Knowledge, policy: PayerPolicy, b: HistoryBuilder) -> PriorAuthResult:
    b.data["assessed_on"] = AS_OF
    history = b.build()
    return evaluate_policy(policy, history, assess(history, kb), kb, AS_OF)


def statuses(r: PriorAuthResult) -> dict[str, str]:
    return {x.id: x.status for x in r.results}


@pytest.mark.parametrize("policy_id", POLICIES)
def test_a_record_that_meets_the_policy_reads_all_met(kb: Knowledge, policy_id: str) -> None:
    r = check(kb, kb.payers[policy_id], qualifying())
    undecided = {
        x.id: (x.status, x.reason)
        for x in r.results
        if x.status not in ("met", "not_applicable") and not x.attestation
    }
    assert not undecided
    assert r.overall == "all_met"
    assert all(x.status == "missing" for x in r.results if x.attestation)  # never met


def fail_one(policy: PayerPolicy) -> tuple[str, HistoryBuilder]:
    """The policy's failed-trials criterion, failed: the second antidepressant responded."""
    criterion = next(c for c in policy.criteria if isinstance(c, FailedTrials))
    b = qualifying()
    if criterion.min_count == 1:  # one failed trial is enough: both must respond
        b.data["treatments"][0]["outcome"] = "response"
        b.data["measurements"][1]["total"] = 8
    b.data["treatments"][1]["outcome"] = "response"
    b.data["measurements"][3]["total"] = 8  # 21 -> 8: a response on the scale too
    return criterion.id, b


@pytest.mark.parametrize("policy_id", POLICIES)
def test_a_record_short_of_one_failed_trial_fails_that_criterion_only(
    kb: Knowledge, policy_id: str
) -> None:
    policy = kb.payers[policy_id]
    failed, b = fail_one(policy)
    passing = statuses(check(kb, policy, qualifying()))
    r = check(kb, policy, b)
    assert statuses(r)[failed] == "not_met"
    assert r.overall == "not_met"
    changed = {k for k, v in statuses(r).items() if v != passing[k]}
    # the augmentation criterion may also lose the trial its add-ons augmented: nothing else
    allowed = {failed} | {c.id for c in policy.criteria if isinstance(c, AugmentationTrials)}
    assert changed <= allowed
    row = next(x for x in r.results if x.id == failed)
    assert "needed" in row.reason and row.evidence


def lack_one(policy: PayerPolicy) -> tuple[str, HistoryBuilder]:
    """One datum removed that one criterion of the policy needs."""
    b = qualifying()
    for c in policy.criteria:
        if isinstance(c, BaselineSeverity):
            b.data["measurements"].pop()  # the recent PHQ-9
            return c.id, b
        if isinstance(c, Age):
            b.data["patient"]["birth_date"] = None
            return c.id, b
    for c in policy.criteria:
        if isinstance(c, PsychotherapyTrial) and c.min_sessions is not None:
            next(t for t in b.data["treatments"] if t["type"] == "psychotherapy")["sessions"] = None
            return c.id, b
        if isinstance(c, FailedTrials) and c.min_adherence is not None:
            for t in b.data["treatments"][:2]:
                t["adherence"] = None
            return c.id, b
        if isinstance(c, PsychotherapyTrial):
            next(t for t in b.data["treatments"] if t["type"] == "psychotherapy")["outcome"] = (
                "unknown"
            )
            return c.id, b
    if any(isinstance(c, ConcurrentTreatment) for c in policy.criteria):  # pragma: no cover
        raise AssertionError("add a datum for this policy")
    raise AssertionError(f"{policy.id}: no criterion to starve of a datum")


@pytest.mark.parametrize("policy_id", POLICIES)
def test_a_record_lacking_one_datum_says_what_is_missing_and_is_never_met(
    kb: Knowledge, policy_id: str
) -> None:
    policy = kb.payers[policy_id]
    lacking, b = lack_one(policy)
    r = check(kb, policy, b)
    row = next(x for x in r.results if x.id == lacking)
    assert row.status == "missing", (row.status, row.reason)
    assert row.missing  # says what to add
    assert r.overall == "gaps"
