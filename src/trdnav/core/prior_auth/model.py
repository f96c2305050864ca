"""What a prior-authorisation check returns: per criterion met / not met / missing data, with the
record rows that decide it and what is missing; for the policy, a summary."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.alerts import Alert

Status = Literal["met", "not_met", "missing", "not_applicable"]
"""``missing``: the record cannot decide (never shown as met); ``not_applicable``: the criterion
is for another kind of request (a renewal criterion on an initial request)."""

Overall = Literal["all_met", "gaps", "not_met"]
"""``all_met``: every applicable criterion met (attestations aside, listed to confirm);
``not_met``: at least one criterion is not met; ``gaps``: none is not met, some lack data."""


class Evidence(BaseModel):
    """One row of the record that a criterion rests on."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["trial", "score", "psychotherapy", "condition", "patient", "treatment", "note"]
    ref: str  # where in the history: "treatments[2]", "measurements[5]", "conditions[0]", "patient"
    on: date | None = None
    summary: str  # "sertraline 150 mg/day, 8.0 weeks at an adequate dose, PHQ-9 18 → 16 (-11 %)"
    counts: bool = True  # counted toward the criterion (False: shown, but does not qualify)
    why_not: str | None = None  # when it does not count: why ("5.0 weeks at dose; 6 needed")


class CriterionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    text: str  # the policy's words
    section: str | None = None
    status: Status
    reason: str  # one sentence: why this status ("2 failed trials from 2 classes; 2 needed")
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()  # what to add to decide it ("no PHQ-9 within 30 days before …")
    attestation: bool = False  # confirmed by the clinician, never by the record


class PriorAuthResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_id: str
    policy_label: str  # PayerPolicy.label(): payer, name, number, version
    payer: str
    treatment: str
    version: str
    effective_from: date | None
    effective_to: date | None
    policy_url: str | None
    typical: bool  # a generic "typical criteria" set, not a payer's policy
    verified: bool  # the policy was re-read in its original (checked_against)
    checked_against: str | None
    citations: tuple[str, ...]  # bibliography keys of the policy
    patient_id: str
    request_date: date
    kind: Literal["initial", "renewal"]
    in_effect: bool  # the request date lies within the policy's effective dates (when given)
    overall: Overall
    results: tuple[CriterionResult, ...]
    left_out: tuple[str, ...] = ()  # parts of the policy not encoded
    # the patient's suicide-risk alerts: shown first wherever the result is (never silent)
    alerts: tuple[Alert, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "policy effective dates end before the request date"

    def counts(self) -> dict[str, int]:
        out = {"met": 0, "not_met": 0, "missing": 0, "not_applicable": 0}
        for r in self.results:
            out[r.status] += 1
        return out
