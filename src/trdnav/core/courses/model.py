"""The interventional course record: what a clinic records about one supervised course.

One model per concept (like the history format): the store saves a ``Course`` whole as JSON with a
version (optimistic locking), the web forms and the API validate with these models, and the course
engine (``trdnav.core.courses``) reads them. Protocol templates (doses, schedules, thresholds,
review points, discharge criteria) are knowledge (``trdnav.knowledge.protocols``), referenced by
``protocol_id``; nothing clinical is hard-coded here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CourseTreatment = Literal["esketamine", "ketamine", "rtms", "ect"]
CourseStatus = Literal["planned", "active", "completed", "stopped"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vitals(Model):
    """One set of vital signs; ``minutes_after_dose`` is None before the dose."""

    at: datetime
    minutes_after_dose: int | None = Field(default=None, ge=0, le=24 * 60)
    systolic: int = Field(ge=50, le=300, description="mmHg")
    diastolic: int = Field(ge=20, le=200, description="mmHg")
    heart_rate: int = Field(ge=20, le=250, description="beats per minute")
    spo2: int | None = Field(default=None, ge=50, le=100, description="%")


class Scale(Model):
    """A rating made during a session (e.g. CADSS, MOAA/S) and when."""

    instrument: str = Field(min_length=1, description="an instrument of the knowledge base")
    minutes_after_dose: int | None = Field(default=None, ge=0, le=24 * 60)
    total: float = Field(ge=0)


class AdverseEvent(Model):
    term: str = Field(min_length=1, max_length=200)
    severity: Literal["mild", "moderate", "severe", "serious"]
    action: str | None = Field(default=None, max_length=1000)


class Override(Model):
    """A clinician proceeding past a blocking finding: who, when, and the written reason."""

    code: str
    by: str
    at: datetime
    reason: str = Field(min_length=10, max_length=2000)


class Acknowledgement(Model):
    code: str
    by: str
    at: datetime


class Eligibility(Model):
    """The review of the planner's safety screening for this treatment, before the course."""

    reviewed_by: str
    reviewed_at: datetime
    findings_reviewed: tuple[str, ...] = Field(description="finding codes shown to the reviewer")
    acknowledged: tuple[Acknowledgement, ...] = ()  # cautions
    overrides: tuple[Override, ...] = ()  # contraindications
    consent_recorded_by: str | None = None
    consent_on: date | None = None
    consent_note: str | None = Field(default=None, max_length=2000)


class SessionRecord(Model):
    """What happened at one session (planned sessions come from the schedule)."""

    number: int = Field(ge=1, description="the planned session number this record fulfils")
    status: Literal["done", "deferred", "missed", "cancelled"]
    on: date
    pre_checks: dict[str, bool] = Field(
        default_factory=dict, description="the protocol's pre-treatment questions, answered"
    )
    pre_vitals: Vitals | None = None
    weight_kg: float | None = Field(default=None, gt=20, le=350)
    dose_mg: float | None = Field(default=None, gt=0, le=1000)
    dose_time: datetime | None = None
    route: str | None = None
    post_vitals: tuple[Vitals, ...] = ()
    scales: tuple[Scale, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] = ()
    observed_until: datetime | None = None
    discharge_criteria_met: dict[str, bool] = Field(default_factory=dict)
    transport: str | None = Field(default=None, max_length=200)
    # rTMS
    motor_threshold_pct: float | None = Field(default=None, gt=0, le=100)
    intensity_pct_mt: float | None = Field(default=None, gt=0, le=200)
    coil_site: str | None = Field(default=None, max_length=120)
    pulses: int | None = Field(default=None, gt=0, le=100_000)
    # ECT
    electrode_placement: Literal["rul", "bitemporal", "bifrontal"] | None = None
    stimulus_dose_mc: float | None = Field(default=None, gt=0, le=2000)
    seizure_seconds: float | None = Field(default=None, ge=0, le=600)
    anaesthesia: str | None = Field(default=None, max_length=200)
    reorientation_minutes: float | None = Field(default=None, ge=0, le=600)
    cognitive_check: str | None = Field(default=None, max_length=200)
    overrides: tuple[Override, ...] = ()
    note: str | None = Field(default=None, max_length=4000)
    recorded_by: str | None = None


class CourseNote(Model):
    kind: Literal["integration", "health_coaching", "follow_up", "review", "other"]
    on: date
    by: str
    text: str = Field(min_length=1, max_length=8000)


class Course(Model):
    id: str = Field(min_length=1, max_length=64)
    patient_id: str
    protocol_id: str = Field(description="a protocol template of the knowledge base or clinic")
    treatment: CourseTreatment
    start: date
    status: CourseStatus = "planned"
    weight_kg: float | None = Field(default=None, gt=20, le=350)
    eligibility: Eligibility | None = None
    rescheduled: dict[int, date] = Field(
        default_factory=dict, description="planned session number -> new date"
    )
    sessions: tuple[SessionRecord, ...] = ()
    notes: tuple[CourseNote, ...] = ()
    plan_after: Literal["maintenance", "taper", "stop", "undecided"] = "undecided"
    plan_note: str | None = Field(default=None, max_length=4000)
