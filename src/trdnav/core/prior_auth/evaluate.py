"""Evaluate a payer's prior-authorisation policy against a patient's record.

``evaluate_policy`` is pure: it takes the policy, the validated history, its assessment (whose
trial verdicts it reads), the knowledge base, the request date and the kind of request, and
returns a :class:`PriorAuthResult`: per criterion met / not met / missing data / not applicable,
each with a one-sentence reason, the record rows it rests on (rows shown but not counted say why)
and what to add. A criterion the record cannot decide is never met; attestations are always left
to the clinician. The semantics of each criterion type are in :mod:`.trials` (failed and
augmentation trials) and :mod:`.criteria` (the others).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from trdnav.core.assessment import Assessment
from trdnav.core.history import History, Medication
from trdnav.core.measures import score_measurements
from trdnav.core.prior_auth.context import Context, iso, result
from trdnav.core.prior_auth.criteria import (
    check_age,
    check_attestation,
    check_concurrent,
    check_exclusions,
    check_psychotherapy,
)
from trdnav.core.prior_auth.model import CriterionResult, Overall, PriorAuthResult
from trdnav.core.prior_auth.severity import check_baseline_severity, check_course_limit
from trdnav.core.prior_auth.trials import check_augmentation_trials, check_failed_trials
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.payers import Criterion, PayerPolicy

_CHECKS: dict[str, Callable[[Context, Any], CriterionResult]] = {
    "failed_trials": check_failed_trials,
    "augmentation_trials": check_augmentation_trials,
    "psychotherapy_trial": check_psychotherapy,
    "baseline_severity": check_baseline_severity,
    "age": check_age,
    "exclusions": check_exclusions,
    "concurrent_treatment": check_concurrent,
    "course_limit": check_course_limit,
    "attestation": check_attestation,
}


def _check_inputs(history: History, assessment: Assessment, kind: str) -> None:
    """Refuse an assessment of another record, with the field named."""
    if kind not in ("initial", "renewal"):
        raise ValueError(f"kind must be 'initial' or 'renewal', not {kind!r}")
    if assessment.patient_id != history.patient.id:
        raise ValueError(
            f"assessment.patient_id {assessment.patient_id!r} is not history.patient.id "
            f"{history.patient.id!r}: assess this history first"
        )
    for v in assessment.trials:
        n = len(history.treatments)
        if not (0 <= v.index < n and isinstance(history.treatments[v.index], Medication)):
            raise ValueError(
                f"assessment.trials: treatments[{v.index}] is not a medication of this history: "
                "assess this history first"
            )


def evaluate_criterion(ctx: Context, c: Criterion) -> CriterionResult:
    """One criterion of the policy, or not applicable to this kind of request."""
    if ctx.kind not in c.applies_to:
        kinds = " and ".join(c.applies_to)
        return result(
            c, "not_applicable", f"applies to {kinds} requests; this is an {ctx.kind} request."
        )
    return _CHECKS[c.type](ctx, c)


def overall(results: tuple[CriterionResult, ...]) -> Overall:
    """``not_met`` if any is not met; ``gaps`` if any lacks data (attestations aside) or if no
    criterion applies at all (nothing was shown to be met); ``all_met`` otherwise."""
    if any(r.status == "not_met" for r in results):
        return "not_met"
    if any(r.status == "missing" and not r.attestation for r in results):
        return "gaps"
    if all(r.status == "not_applicable" or r.attestation for r in results):
        return "gaps"
    return "all_met"


def _in_effect(policy: PayerPolicy, request_date: date) -> tuple[bool, list[str]]:
    notes: list[str] = []
    if policy.effective_from is not None and request_date < policy.effective_from:
        notes.append(
            f"the request date {iso(request_date)} is before the policy took effect "
            f"({iso(policy.effective_from)}): check the version in force on that date"
        )
    if policy.effective_to is not None and request_date > policy.effective_to:
        notes.append(
            f"the request date {iso(request_date)} is after the policy's end date "
            f"({iso(policy.effective_to)}): check for a newer version"
        )
    return not notes, notes


def evaluate_policy(
    policy: PayerPolicy,
    history: History,
    assessment: Assessment,
    kb: Knowledge,
    request_date: date,
    kind: Literal["initial", "renewal"] = "initial",
) -> PriorAuthResult:
    """Each criterion of ``policy`` judged against the record on ``request_date``."""
    _check_inputs(history, assessment, kind)
    scored = tuple(s for s in score_measurements(history, kb) if s.date <= request_date)
    ctx = Context(
        policy=policy,
        history=history,
        assessment=assessment,
        kb=kb,
        request_date=request_date,
        kind=kind,
        scored=scored,
    )
    results = tuple(evaluate_criterion(ctx, c) for c in policy.criteria)
    alerts = tuple(a for a in assessment.alerts if a.code == "suicide_risk")
    notes: list[str] = []
    if all(r.status == "not_applicable" or r.attestation for r in results):
        notes.append(
            f"no criterion of this policy, as encoded, can be judged from the record for {kind} "
            "requests: check the payer's own terms"
        )
    in_effect, dated = _in_effect(policy, request_date)
    notes.extend(dated)
    if policy.typical:
        notes.append(
            "a generic set of typical criteria, not a payer's policy: check the payer's own"
        )
    if assessment.assessed_on != request_date:
        notes.append(
            f"trial durations at an adequate dose are as of the assessment "
            f"({iso(assessment.assessed_on)}), not the request date ({iso(request_date)})"
        )
    return PriorAuthResult(
        policy_id=policy.id,
        policy_label=policy.label(),
        payer=policy.payer,
        treatment=policy.treatment,
        version=policy.version,
        effective_from=policy.effective_from,
        effective_to=policy.effective_to,
        policy_url=policy.url,
        typical=policy.typical,
        verified=policy.verified,
        checked_against=policy.checked_against,
        citations=policy.source,
        patient_id=history.patient.id,
        request_date=request_date,
        kind=kind,
        in_effect=in_effect,
        overall=overall(results),
        results=results,
        left_out=policy.left_out,
        notes=tuple(notes),
        alerts=alerts,
    )


__all__ = ["evaluate_criterion", "evaluate_policy", "overall"]
