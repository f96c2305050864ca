"""Pydantic models of every knowledge file.

Every model forbids unknown keys, so a typo in a YAML file is an error that names the file and
the field. Every clinical entity carries ``source`` (bibliography keys) and ``verified`` (whether
the figures were confirmed in the original source; unverified facts are shown as such).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(Strict):
    """A fact or entity with its provenance."""

    source: tuple[str, ...] = Field(min_length=1, description="bibliography keys")
    verified: bool = Field(description="confirmed in the original source")
    checked_against: str | None = Field(
        default=None,
        description="where the fact was read and confirmed: the source's address and section",
    )
    note: str | None = None


class Manifest(Strict):
    kb_version: str
    schema_version: int
    released: str


class BibEntry(Strict):
    citation: str = Field(min_length=10, description="full reference, as it would be cited")
    url: str | None = None


class Role(StrEnum):
    ANTIDEPRESSANT = "antidepressant"
    AUGMENTATION = "augmentation"


class DrugClass(Sourced):
    id: str
    label: str
    antidepressant: bool = Field(description="a class of antidepressants (counts for TRD)")


class SerumLevel(Strict):
    min: float = Field(gt=0)
    max: float | None = Field(default=None, gt=0)
    unit: str


class AntidepressantDose(Strict):
    min_adequate_mg_per_day: float = Field(gt=0)
    usual_max_mg_per_day: float = Field(gt=0)
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AntidepressantDose:
        if self.usual_max_mg_per_day < self.min_adequate_mg_per_day:
            raise ValueError("usual_max_mg_per_day is below min_adequate_mg_per_day")
        return self


class AugmentationDose(Strict):
    min_mg_per_day: float | None = Field(default=None, gt=0)
    max_mg_per_day: float | None = Field(default=None, gt=0)
    serum_level: SerumLevel | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _has_threshold(self) -> AugmentationDose:
        if self.min_mg_per_day is None and self.serum_level is None:
            raise ValueError("an augmentation agent needs min_mg_per_day or serum_level")
        return self


class Drug(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    roles: tuple[Role, ...] = Field(min_length=1)
    drug_class: str
    brands: tuple[str, ...] = ()
    misspellings: tuple[str, ...] = ()
    rxnorm: str | None = Field(default=None, description="RxNorm ingredient RXCUI")
    rxnorm_verified: bool = False
    rxnorm_checked_against: str | None = None  # where the RXCUI was confirmed
    atc: str | None = None
    atc_verified: bool = False
    atc_checked_against: str | None = None  # where the ATC code was confirmed
    antidepressant_dose: AntidepressantDose | None = None
    augmentation_dose: AugmentationDose | None = None
    dose_unit: Literal["mg/day", "mg/24h", "mg/session"] = "mg/day"
    added_in: str = "0.1.0"

    @model_validator(mode="after")
    def _doses_match_roles(self) -> Drug:
        if Role.ANTIDEPRESSANT in self.roles and self.antidepressant_dose is None:
            raise ValueError(f"{self.id}: an antidepressant needs antidepressant_dose")
        if Role.AUGMENTATION in self.roles and self.augmentation_dose is None:
            raise ValueError(f"{self.id}: an augmentation agent needs augmentation_dose")
        return self


class NumberFact(Sourced):
    value: float


class AdequacyDefaults(Strict):
    min_weeks_at_adequate_dose: NumberFact
    min_adherence: NumberFact
    chronic_after_years: NumberFact
    pseudo_resistance_min_inadequate: NumberFact
    trd_min_failed_trials: NumberFact
    response_reduction: NumberFact = Field(description="fraction of baseline reduction = response")
    partial_response_reduction: NumberFact
    counting_rules: Sourced = Field(description="how augmentations, combinations and ECT count")


class ConditionTerm(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    statuses: tuple[str, ...] = ()
    default_status: str | None = None
    historical: bool = Field(
        default=False,
        description="a history-of term (past haemorrhage, past psychosis): 'resolved' still counts",
    )
    note: str | None = None


class ClinicalStatuses(Sourced):
    """Statuses any condition may carry, as FHIR and most people write them.

    ``present`` statuses mean the condition is there (the term's own default status then
    applies); ``absent`` statuses mean it is not counted (resolved, inactive). A term's own
    ``statuses`` take precedence (substance use ``remission``).
    """

    present: tuple[str, ...] = Field(min_length=1)
    absent: tuple[str, ...] = Field(min_length=1)


class ConditionVocabulary(Sourced):
    conditions: tuple[ConditionTerm, ...]
    clinical_statuses: ClinicalStatuses | None = None


class Band(Strict):
    min: float
    max: float | None = None
    points: float | None = None
    label: str


class StagingMethod(Sourced):
    id: str
    name: str
    description: str
    bands: dict[str, tuple[Band, ...]] = Field(default_factory=dict)
    parameters: dict[str, float] = Field(default_factory=dict)
    inputs: tuple[str, ...] = ()


# --- instruments (rating scales and screeners) -------------------------------------------------


class InstrumentItem(Strict):
    n: int = Field(ge=1, description="item number as printed on the form")
    min: int = 0
    max: int
    text: str | None = Field(default=None, description="wording, only where the licence allows")
    domain: str | None = None


class Domain(Strict):
    name: str
    items: tuple[int, ...] = Field(min_length=1)
    combine: Literal["max", "sum"] = "sum"


class MissingRule(Strict):
    rule: Literal["prorate", "refuse", "domain_any"]
    max_missing: int = Field(default=0, ge=0, description="items that may be missing")
    never_missing: tuple[int, ...] = Field(
        default=(), description="items that may never be prorated away (e.g. PHQ-9 item 9)"
    )
    source: tuple[str, ...] = Field(min_length=1)
    verified: bool
    checked_against: str | None = None  # where it was confirmed: address and section
    note: str | None = None


class ScoreBand(Strict):
    min: float
    max: float | None = None
    label: str


class ScreenRule(Strict):
    """A positive screen. ``method`` selects the rule; its parameters sit beside it."""

    method: Literal["total_at_least", "mdq", "asrs_part_a", "cssrs_triage", "item_at_least"]
    cutoff: float | None = None
    cutoff_by_sex: dict[str, float] | None = None
    item: int | None = None
    item_thresholds: dict[int, int] | None = Field(
        default=None, description="ASRS: item -> lowest answer that counts"
    )
    min_items_counted: int | None = None
    label: str
    source: tuple[str, ...] = Field(min_length=1)
    verified: bool
    checked_against: str | None = None  # where it was confirmed: address and section
    note: str | None = None


class TriageLevel(Strict):
    """C-SSRS: a severity reached when any of ``items`` is answered yes."""

    severity: Literal["low", "moderate", "high"]
    items: tuple[int, ...]
    label: str


class Reliability(Strict):
    sd: float = Field(gt=0, description="baseline standard deviation of totals")
    r: float = Field(gt=0, lt=1, description="reliability coefficient")
    kind: str = Field(description="e.g. test-retest, Cronbach alpha")
    source: tuple[str, ...] = Field(min_length=1)
    verified: bool
    checked_against: str | None = None  # where it was confirmed: address and section


class Outcomes(Strict):
    response_reduction: float | None = Field(default=None, gt=0, le=1)
    remission_max_total: float | None = Field(
        default=None, description="remission = total at or below this value"
    )
    source: tuple[str, ...] = Field(min_length=1)
    verified: bool
    checked_against: str | None = None  # where it was confirmed: address and section
    note: str | None = None


class Loinc(Strict):
    panel: str | None = None
    total: str | None = None
    items: dict[int, str] = Field(default_factory=dict)
    verified: bool = False
    checked_against: str | None = None  # where it was confirmed: address and section


class Licence(Strict):
    status: Literal[
        "public_domain", "free_to_use", "free_with_permission", "copyrighted", "unknown"
    ]
    store_item_text: bool
    note: str | None = None


class Instrument(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(description="canonical name, e.g. PHQ-9")
    full_name: str
    aliases: tuple[str, ...] = ()
    rater: Literal["self_report", "clinician", "observer"]
    answer_type: Literal["integer", "yes_no"] = "integer"
    items: tuple[InstrumentItem, ...] = Field(min_length=1)
    domains: tuple[Domain, ...] = ()
    total_min: float = 0
    total_max: float | None = None
    scored: bool = Field(default=True, description="false: items are recorded, no total")
    missing: MissingRule
    bands: tuple[ScoreBand, ...] = ()
    screen: ScreenRule | None = None
    triage: tuple[TriageLevel, ...] = ()
    outcomes: Outcomes | None = None
    reliability: Reliability | None = None
    loinc: Loinc = Field(default_factory=Loinc)
    licence: Licence
    suicide_item: int | None = Field(
        default=None,
        description="item whose answer > 0 is a suicide-risk signal (PHQ-9 item 9, QIDS item 12)",
    )
    added_in: str = "0.1.0"


# --- measurement-based care ---------------------------------------------------------------------


class ScheduleRule(Sourced):
    id: str
    instrument: str = Field(description="instrument id")
    every_days: int = Field(ge=0, description="0 = at every session of the course")
    when: Literal["acute_treatment", "interventional_course", "after_suicide_signal"]
    label: str
    acute_weeks: int | None = None


class CrisisResource(Sourced):
    name: str
    contact: str


class MeasurementDefaults(Strict):
    reliable_change_z: NumberFact
    sustained_remission_consecutive: NumberFact
    plateau_weeks: NumberFact
    trial_window_grace_days: NumberFact
    trial_baseline_lookback_days: NumberFact
    schedule: tuple[ScheduleRule, ...]
    crisis_resources: dict[str, tuple[CrisisResource, ...]]
    default_locale: str
