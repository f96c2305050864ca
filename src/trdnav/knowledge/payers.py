"""Payers' prior-authorisation policies for rTMS and esketamine, as versioned data.

One YAML file per policy under ``knowledge/data/payers/<id>.yaml``; a clinic adds the policies of
its own payers in a folder named by ``TRDNAV_PAYERS_DIR`` (validated the same way; a clinic policy
may not reuse a packaged id). A policy names its payer, number, treatment, version, effective dates
and the address it was read at, and lists its criteria in a small typed vocabulary that the core
evaluates against the trial record (:mod:`trdnav.core.prior_auth`):

``failed_trials``        failed adequate antidepressant trials (count, distinct classes, weeks,
                         dose level, adherence, look-back, what counts as failure)
``augmentation_trials``  failed augmentation trials (agents, count, weeks)
``psychotherapy_trial``  a failed psychotherapy trial (modalities, sessions or weeks)
``baseline_severity``    a recent score at or above a threshold on an accepted instrument
``age``                  age limits on the request date
``exclusions``           diagnoses and conditions that exclude the treatment
``concurrent_treatment`` treatments required alongside (an oral antidepressant) or barred
``course_limit``         sessions in a course; the response a renewal needs
``attestation``          what the record cannot hold (prescriber specialty, device clearance,
                         REMS enrolment, a PDMP check): always to be confirmed by the clinician

Every criterion carries the policy's own words (``text``) and where they are (``section``); the
policy as a whole carries ``source`` (bibliography keys), ``verified`` and ``checked_against``
like every other fact of the knowledge base.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from trdnav.errors import Problem
from trdnav.knowledge.schema import Sourced, Strict

PolicyTreatment = Literal["rtms", "esketamine"]
RequestKind = Literal["initial", "renewal"]
DoseLevel = Literal["adequate", "maximal"]
Modality = Literal[
    "cbt", "cbasp", "ipt", "behavioral_activation", "dbt", "psychodynamic", "mbct", "other"
]
TreatmentType = Literal["medication", "ect", "rtms", "esketamine", "ketamine", "psychotherapy"]


class Window(Strict):
    """Where a trial must lie: in the current episode, or started within ``years`` before the
    request (``lookback``), or anywhere in the record (``any``)."""

    scope: Literal["current_episode", "lookback", "any"] = "current_episode"
    years: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _years_for_lookback(self) -> Window:
        if (self.scope == "lookback") != (self.years is not None):
            raise ValueError("give years exactly when scope is 'lookback'")
        return self


class Failure(Strict):
    """What the payer counts as a failed trial.

    ``max_improvement_pct``: improvement of at most this % on a validated scale (e.g. 25: "≤25 %
    improvement"); ``below_improvement_pct``: improvement under this % (e.g. 50: "<50 %
    reduction"). With either, a trial fails only on scores inside its window (the instruments in
    ``instruments``, or any with response cut-offs when empty); a trial without such scores is
    *missing data*, whatever its recorded outcome, when ``scores_required``; otherwise the recorded
    outcome (no response, partial response, response lost) is accepted and said to be.
    ``intolerance_counts``: a trial stopped for intolerance counts as failed (most policies accept
    "inadequate response or intolerance")."""

    max_improvement_pct: float | None = Field(default=None, ge=0, le=100)
    below_improvement_pct: float | None = Field(default=None, gt=0, le=100)
    instruments: tuple[str, ...] = ()
    scores_required: bool = False
    intolerance_counts: bool = True

    @model_validator(mode="after")
    def _one_rule(self) -> Failure:
        if self.max_improvement_pct is not None and self.below_improvement_pct is not None:
            raise ValueError("give max_improvement_pct or below_improvement_pct, not both")
        return self


class _Criterion(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=5, description="what the policy says, in its words or close")
    section: str | None = Field(default=None, description="where in the policy")
    applies_to: tuple[RequestKind, ...] = ("initial",)


class FailedTrials(_Criterion):
    type: Literal["failed_trials"] = "failed_trials"
    min_count: int = Field(ge=1)
    min_classes: int = Field(default=1, ge=1)
    min_weeks: float = Field(gt=0, description="weeks at the dose level below")
    dose_level: DoseLevel = "adequate"
    min_adherence: float | None = Field(default=None, gt=0, le=1)
    window: Window = Window()
    failure: Failure = Failure()


class AugmentationTrials(_Criterion):
    type: Literal["augmentation_trials"] = "augmentation_trials"
    min_count: int = Field(ge=1)
    agents: tuple[str, ...] = Field(
        default=(), description="drug ids or drug class ids accepted (empty: any augmentation)"
    )
    min_weeks: float = Field(gt=0)
    window: Window = Window()
    failure: Failure = Failure()


class PsychotherapyTrial(_Criterion):
    type: Literal["psychotherapy_trial"] = "psychotherapy_trial"
    modalities: tuple[Modality, ...] = Field(
        default=(), description="accepted modalities (empty: any evidence-based one)"
    )
    min_sessions: int | None = Field(default=None, ge=1)
    min_weeks: float | None = Field(default=None, gt=0)
    window: Window = Window(scope="any")
    failure_required: bool = Field(
        default=True, description="the trial must have ended without response (else: any trial)"
    )


class ScoreThreshold(Strict):
    instrument: str
    min_total: float
    inclusive: bool = Field(default=True, description="≥ when true, > when false")


class BaselineSeverity(_Criterion):
    type: Literal["baseline_severity"] = "baseline_severity"
    thresholds: tuple[ScoreThreshold, ...] = Field(min_length=1)
    within_days: int = Field(ge=1, description="the score's age on the request date, at most")


class Age(_Criterion):
    type: Literal["age"] = "age"
    min_years: int | None = Field(default=None, ge=0)
    max_years: int | None = Field(default=None, ge=0)


class Exclusions(_Criterion):
    type: Literal["exclusions"] = "exclusions"
    diagnoses: tuple[str, ...] = Field(default=(), description="episode diagnoses excluded")
    psychotic_features: bool = False
    conditions: tuple[str, ...] = Field(default=(), description="condition terms excluded")


class ConcurrentTreatment(_Criterion):
    type: Literal["concurrent_treatment"] = "concurrent_treatment"
    requires_oral_antidepressant: bool = False
    oral_antidepressant_not_failed: bool = Field(
        default=False, description="the concurrent antidepressant is not one already failed"
    )
    barred: tuple[TreatmentType, ...] = Field(default=(), description="not at the same time")


class CourseLimit(_Criterion):
    type: Literal["course_limit"] = "course_limit"
    max_sessions: int | None = Field(default=None, ge=1)
    renewal_min_improvement_pct: float | None = Field(default=None, gt=0, le=100)
    instruments: tuple[str, ...] = ()


class Attestation(_Criterion):
    type: Literal["attestation"] = "attestation"
    item: str = Field(min_length=3, description="what the clinician confirms")


Criterion = Annotated[
    FailedTrials
    | AugmentationTrials
    | PsychotherapyTrial
    | BaselineSeverity
    | Age
    | Exclusions
    | ConcurrentTreatment
    | CourseLimit
    | Attestation,
    Field(discriminator="type"),
]


class PayerPolicy(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    payer: str
    policy_number: str | None = None
    name: str
    treatment: PolicyTreatment
    version: str = Field(description="the policy's own revision label or date")
    effective_from: date | None = None
    effective_to: date | None = None
    url: str | None = Field(default=None, description="where the policy is published")
    typical: bool = Field(
        default=False, description="a generic set of typical criteria, not a payer's policy"
    )
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    left_out: tuple[str, ...] = Field(
        default=(), description="parts of the policy not encoded, and why"
    )
    clinic: bool = False  # loaded from TRDNAV_PAYERS_DIR (set by the loader)

    @model_validator(mode="after")
    def _unique_ids(self) -> PayerPolicy:
        seen: set[str] = set()
        for c in self.criteria:
            if c.id in seen:
                raise ValueError(f"criterion id {c.id!r} is used twice")
            seen.add(c.id)
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self

    def label(self) -> str:
        """``Payer — Name (number), version V``: how every page of a packet names it."""
        number = f" ({self.policy_number})" if self.policy_number else ""
        return f"{self.payer} — {self.name}{number}, version {self.version}"


def load_payers(
    folder: Path,
    problems: list[Problem],
    *,
    instruments: Iterable[str],
    conditions: Iterable[str],
    diagnoses: Iterable[str],
    agents: Iterable[str],
    bibliography: Iterable[str],
    clinic: bool = False,
) -> dict[str, PayerPolicy]:
    """The policies of ``folder`` (``*.yaml``, one each), checked against the knowledge base's
    instruments, condition terms, diagnoses, drug and class ids and bibliography; each defect is a
    :class:`Problem` naming the file and the field."""
    out: dict[str, PayerPolicy] = {}
    if not folder.is_dir():
        return out
    known = {
        "instrument": set(instruments),
        "condition": set(conditions),
        "diagnosis": set(diagnoses),
        "agent": set(agents),
        "citation": set(bibliography),
    }
    for path in sorted(folder.glob("*.yaml")):
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            problems.append(Problem("(file)", "unreadable", f"not readable YAML: {exc}", where))
            continue
        if isinstance(raw, dict):
            raw = {**raw, "clinic": clinic}
        try:
            policy = PayerPolicy.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors()
            # when every criterion is invalid, pydantic also says the tuple is empty: noise
            bad_items = any(len(e["loc"]) > 1 and e["loc"][0] == "criteria" for e in errors)
            for err in errors:
                if bad_items and err["loc"] == ("criteria",) and err["type"] == "too_short":
                    continue
                loc = ".".join(str(p) for p in err["loc"]) or "(policy)"
                problems.append(Problem(loc, "invalid", err["msg"], where))
            continue
        if policy.id != path.stem:
            problems.append(
                Problem("id", "id_mismatch", f"the id must be the file name, {path.stem!r}", where)
            )
        for loc, code, msg in _defects(policy, known):
            problems.append(Problem(loc, code, msg, where))
        if policy.id in out:
            problems.append(Problem("id", "duplicate_id", f"{policy.id!r} is defined twice", where))
        out[policy.id] = policy
    return out


def _defects(policy: PayerPolicy, known: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []

    def check(kind: str, loc: str, values: Iterable[str]) -> None:
        for v in values:
            if v not in known[kind]:
                found.append((loc, f"unknown_{kind}", f"unknown {kind} {v!r}"))

    check("citation", "source", policy.source)
    for c in policy.criteria:
        at = f"criteria.{c.id}"
        if isinstance(c, FailedTrials | AugmentationTrials):
            check("instrument", f"{at}.failure.instruments", c.failure.instruments)
        if isinstance(c, AugmentationTrials):
            check("agent", f"{at}.agents", c.agents)
        if isinstance(c, BaselineSeverity):
            check("instrument", f"{at}.thresholds", (t.instrument for t in c.thresholds))
        if isinstance(c, CourseLimit):
            check("instrument", f"{at}.instruments", c.instruments)
        if isinstance(c, Exclusions):
            check("condition", f"{at}.conditions", c.conditions)
            check("diagnosis", f"{at}.diagnoses", c.diagnoses)
    return found


__all__ = [
    "Age",
    "Attestation",
    "AugmentationTrials",
    "BaselineSeverity",
    "ConcurrentTreatment",
    "CourseLimit",
    "Criterion",
    "Exclusions",
    "FailedTrials",
    "Failure",
    "PayerPolicy",
    "PsychotherapyTrial",
    "ScoreThreshold",
    "Window",
    "load_payers",
]
