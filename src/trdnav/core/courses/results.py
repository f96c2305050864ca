"""What the course engine returns: every result explains itself (code, message, sources, verified).

The engine's functions (pure: "today" is a parameter, no I/O):

- ``schedule.planned_sessions(protocol, course, calendar) -> list[PlannedSession]``: sessions from
  the protocol's phases and the course start, skipping the clinic's closed days, honouring
  ``course.rescheduled``; missed sessions handled by the protocol's rule.
- ``schedule.course_tasks(protocol, course, calendar, today, measured=None) -> list[Task]``: review
  points (e.g. end of esketamine induction), sessions due or not recorded, the measure before the
  next session (done when ``measured`` has a score of it that day or the day before).
- ``dosing.weight_based_dose(mg_per_kg, weight_kg, max_mg=None) -> DoseCalculation``.
- ``thresholds.evaluate_session(protocol, course, record) -> SessionEvaluation``: the protocol's
  threshold rules applied to a session record (block / warn / extend monitoring / discharge).
- ``eligibility.review_eligibility(protocol, findings, course) -> EligibilityDecision``: the
  planner's safety findings for this treatment, contraindications block unless overridden with a
  reason, cautions need acknowledgement, consent must be recorded.
- ``outcomes.clinic_outcomes(results) -> list[OutcomeRate]``: response and remission rates by
  treatment type with counts and Wilson 95 % confidence intervals.
- ``rems.rems_rows(protocol, course) -> list[RemsRow]``: the esketamine REMS monitoring data.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from trdnav.core.courses.model import CourseTreatment


class Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class CourseFinding(Result):
    """One threshold or eligibility finding. ``severity``: ``block`` stops (until overridden with
    a written reason), ``warn`` must be acknowledged or shown, ``info`` is shown."""

    code: str  # stable, e.g. "esketamine_predose_bp_high"
    severity: str  # "block" | "warn" | "info"
    message: str
    citations: tuple[str, ...]
    verified: bool
    rule_id: str | None = None
    overridden_by: str | None = None  # who overrode a block, if anyone


class PlannedSession(Result):
    number: int
    on: date
    phase: str  # the protocol phase id, e.g. "induction"
    dose_options_mg: tuple[float, ...] = ()
    moved_from: date | None = None  # rescheduled or pushed past a closed day
    review: str | None = None  # a review point due at this session, if any
    make_up_for: int | None = None  # the missed or deferred session this one makes up


class Task(Result):
    code: str  # "review_point" | "session_not_recorded" | "measure_before_session" | ...
    due_on: date
    text: str
    status: str  # "due" | "overdue" | "done" | "scheduled"
    citations: tuple[str, ...] = ()
    verified: bool = True


class DoseCalculation(Result):
    mg: float
    weight_kg: float
    mg_per_kg: float
    capped: bool
    formula: str  # e.g. "0.5 mg/kg × 82.0 kg = 41.0 mg"


class SessionEvaluation(Result):
    findings: tuple[CourseFinding, ...]
    deferred: bool  # a block that is not overridden: the dose must not be given
    extend_monitoring: bool
    may_discharge: bool
    observation_minutes_required: int | None
    dose: DoseCalculation | None = None


class EligibilityDecision(Result):
    can_start: bool
    blocking: tuple[CourseFinding, ...]  # contraindications without an override
    unacknowledged: tuple[CourseFinding, ...]  # cautions not yet acknowledged
    consent_missing: bool
    reasons: tuple[str, ...]
    findings: tuple[CourseFinding, ...] = ()  # every finding, overridden ones with overridden_by


class Proportion(Result):
    count: int
    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None


class OutcomeRate(Result):
    treatment: CourseTreatment
    courses: int
    response: Proportion
    remission: Proportion
    citations: tuple[str, ...]


class RemsRow(Result):
    session: int
    on: date
    dose_mg: float | None
    pre_systolic: int | None
    pre_diastolic: int | None
    max_post_systolic: int | None
    max_post_diastolic: int | None
    sedation: float | None  # MOAA/S, lowest
    dissociation: float | None  # CADSS, highest
    adverse_events: tuple[str, ...]
    observed_minutes: int | None
    discharged_ok: bool | None
