"""The treatment-history format, version 1: the single definition of a patient's history.

These pydantic models are the format. The JSON Schema printed by ``trdnav schema`` is generated from
them; the store, web forms and FHIR layer map to and from them. Field checks that need no knowledge
live here; checks that need the knowledge base (drug names, condition vocabulary) and cross-field
date checks live in :mod:`trdnav.core.checks` so that every problem is reported at once.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1

_Date = date  # for fields named ``date`` that have a default (the name would shadow the type)


class Model(BaseModel):
    # a dose of Infinity mg or NaN (JSON's NaN, YAML's .inf) is refused like any bad number
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False
    )


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class Diagnosis(StrEnum):
    MDD_SINGLE = "mdd_single"
    MDD_RECURRENT = "mdd_recurrent"
    PERSISTENT_DEPRESSIVE_DISORDER = "persistent_depressive_disorder"
    BIPOLAR_I_DEPRESSION = "bipolar_i_depression"
    BIPOLAR_II_DEPRESSION = "bipolar_ii_depression"
    OTHER = "other"


class Severity(StrEnum):
    SUBSYNDROMAL = "subsyndromal"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    SEVERE_PSYCHOTIC = "severe_psychotic"


class Outcome(StrEnum):
    NO_RESPONSE = "no_response"
    PARTIAL_RESPONSE = "partial_response"
    RESPONSE = "response"
    REMISSION = "remission"
    RESPONSE_LOST = "response_lost"  # a response or remission later lost on the same drug
    INTOLERANCE = "intolerance"
    UNKNOWN = "unknown"


FAILED_OUTCOMES = frozenset({Outcome.NO_RESPONSE, Outcome.PARTIAL_RESPONSE})
RESPONDED_OUTCOMES = frozenset({Outcome.RESPONSE, Outcome.REMISSION})


class Patient(Model):
    id: str = Field(min_length=1, description="the clinic's identifier for the patient")
    birth_date: date | None = None
    sex: Sex = Sex.UNKNOWN
    pregnant: bool = False
    breastfeeding: bool = False


class Episode(Model):
    onset: date = Field(description="onset of the current major depressive episode")
    diagnosis: Diagnosis
    severity: Severity = Field(description="severity at baseline of the current episode")


class Condition(Model):
    name: str = Field(description="a term of the documented conditions vocabulary")
    status: str | None = Field(default=None, description="e.g. controlled / uncontrolled")


class DoseStep(Model):
    from_: date = Field(alias="from", description="the date this daily dose started")
    mg_per_day: float = Field(ge=0, description="total daily dose in mg (mg/24 h for patches)")


class TreatmentBase(Model):
    start: date
    stop: date | None = Field(default=None, description="absent = ongoing")
    outcome: Outcome = Outcome.UNKNOWN
    note: str | None = None


class Medication(TreatmentBase):
    type: Literal["medication"] = "medication"
    drug: str = Field(min_length=1, description="generic or brand name")
    doses: tuple[DoseStep, ...] = Field(default=(), description="dose steps in date order")
    adherence: float | None = Field(
        default=None, ge=0, le=1, description="fraction of doses taken (0..1)"
    )
    augments: str | None = Field(
        default=None, description="for an add-on: the drug it was added to"
    )
    serum_level: float | None = Field(
        default=None, gt=0, description="steady-state level (lithium mmol/L)"
    )
    response_lost_on: date | None = Field(
        default=None, description="a response or remission was lost on this drug at this date"
    )


class Ect(TreatmentBase):
    type: Literal["ect"] = "ect"
    sessions: int | None = Field(default=None, ge=0)
    electrode_placement: Literal[
        "bilateral", "bitemporal", "bifrontal", "right_unilateral", "unknown"
    ] = "unknown"


class Rtms(TreatmentBase):
    type: Literal["rtms"] = "rtms"
    sessions: int | None = Field(default=None, ge=0)
    protocol: Literal["10hz", "itbs", "accelerated_itbs", "deep_tms", "1hz_right", "other"] = (
        "other"
    )


class Esketamine(TreatmentBase):
    type: Literal["esketamine"] = "esketamine"
    sessions: int | None = Field(default=None, ge=0)
    mg_per_session: float | None = Field(default=None, gt=0)


class Ketamine(TreatmentBase):
    type: Literal["ketamine"] = "ketamine"
    sessions: int | None = Field(default=None, ge=0)
    route: Literal["iv", "im", "oral", "sublingual", "intranasal", "other"] = "iv"
    mg_per_kg: float | None = Field(default=None, gt=0)


class Psychotherapy(TreatmentBase):
    type: Literal["psychotherapy"] = "psychotherapy"
    modality: Literal[
        "cbt", "cbasp", "ipt", "behavioral_activation", "dbt", "psychodynamic", "mbct", "other"
    ] = "other"
    sessions: int | None = Field(default=None, ge=0)


Treatment = Annotated[
    Medication | Ect | Rtms | Esketamine | Ketamine | Psychotherapy,
    Field(discriminator="type"),
]
TREATMENT_TYPES = ("medication", "ect", "rtms", "esketamine", "ketamine", "psychotherapy")


class Measurement(Model):
    instrument: str = Field(min_length=1, description="e.g. PHQ-9, QIDS-SR16, MADRS")
    date: date
    items: tuple[int | None, ...] | None = Field(default=None, description="item answers")
    total: float | None = Field(default=None, ge=0, description="total when items are absent")


class ClinicianAlert(Model):
    """A risk the clinician records directly (e.g. disclosed at interview): never filtered out."""

    type: Literal["suicide_risk"] = "suicide_risk"
    date: date
    severity: Literal["low", "moderate", "high"]
    note: str | None = Field(default=None, description="what was observed or disclosed")
    entered_by: str | None = None


class StagingInputs(Model):
    """Optional inputs of staging methods beyond the treatment history (DM-TRD)."""

    functional_impairment: Literal["none", "mild", "moderate", "severe"] | None = None
    comorbid_anxiety: Literal["none", "some", "anxiety_disorder"] | None = None
    personality_disorder: Literal["none", "traits", "disorder"] | None = None
    psychosocial_stressors: Literal["none", "some", "severe"] | None = None
    childhood_trauma: bool | None = None
    psychotherapy_trials: int | None = Field(default=None, ge=0)
    intensified_treatment: Literal["none", "some", "intensive"] | None = None


class Lab(Model):
    """A laboratory result, in any unit the knowledge base accepts for the test."""

    test: str = Field(min_length=1, description="e.g. TSH, vitamin B12, 25-OH vitamin D, CRP")
    value: float
    unit: str = Field(min_length=1, description="e.g. pg/mL or pmol/L for vitamin B12")
    date: date


class PgxResult(Model):
    """A pharmacogenomic phenotype as reported by the laboratory."""

    gene: str = Field(min_length=1, description="CYP2D6, CYP2C19 or CYP2B6")
    phenotype: str = Field(min_length=1, description="e.g. poor, intermediate, normal, ultrarapid")
    date: _Date | None = Field(default=None, description="date of the report")


class CurrentMedication(Model):
    """Any drug the patient takes now (psychiatric or not; free text, not checked)."""

    drug: str = Field(min_length=1, description="any drug name, e.g. carbamazepine")
    mg_per_day: float | None = Field(default=None, ge=0)
    start: _Date | None = None
    note: str | None = None


class History(Model):
    """A patient's treatment history: the input of every assessment."""

    format_version: Literal[1] = 1
    patient: Patient
    assessed_on: date | None = Field(
        default=None, description="the date the assessment is as of; default today"
    )
    episode: Episode
    conditions: tuple[Condition, ...] = ()
    treatments: tuple[Treatment, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    staging_inputs: StagingInputs | None = None
    clinician_alerts: tuple[ClinicianAlert, ...] = Field(
        default=(), description="suicide-risk alerts entered by a clinician"
    )
    labs: tuple[Lab, ...] = Field(default=(), description="screening laboratory results")
    pgx: tuple[PgxResult, ...] = Field(default=(), description="pharmacogenomic phenotypes")
    current_medications: tuple[CurrentMedication, ...] = Field(
        default=(), description="every drug taken now, for interaction checks"
    )
