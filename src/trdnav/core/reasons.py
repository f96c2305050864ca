"""Stable reason codes (a public contract: add, never rename) and the results that carry them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ReasonCode(StrEnum):
    # trial adequacy
    DOSE_BELOW_MINIMUM = "dose_below_minimum"
    DURATION_TOO_SHORT = "duration_too_short"
    POOR_ADHERENCE = "poor_adherence"
    STOPPED_FOR_INTOLERANCE = "stopped_for_intolerance"
    DOSE_UNKNOWN = "dose_unknown"
    ADHERENCE_UNKNOWN = "adherence_unknown"
    SERUM_LEVEL_BELOW_TARGET = "serum_level_below_target"
    SERUM_LEVEL_UNKNOWN = "serum_level_unknown"
    OUTCOME_UNKNOWN = "outcome_unknown"
    ONGOING = "ongoing"
    RESPONDED = "responded"
    BEFORE_CURRENT_EPISODE = "before_current_episode"
    AUGMENTATION_NOT_COUNTED = "augmentation_not_counted"
    SAME_DRUG_ALREADY_COUNTED = "same_drug_already_counted"
    OUTCOME_FROM_MEASUREMENTS = "outcome_from_measurements"
    RESPONSE_LOST = "response_lost"
    # where the patient is now (current state) and the plan step it leads to
    NO_CURRENT_ANTIDEPRESSANT = "no_current_antidepressant"
    STATE_FROM_SCORES = "state_from_scores"
    STATE_FROM_RECORD = "state_from_record"
    PLAN_STEP = "plan_step"
    # TRD determination
    TWO_OR_MORE_FAILURES = "two_or_more_failures"
    FEWER_THAN_TWO_FAILURES = "fewer_than_two_failures"
    UNKNOWN_TRIALS_COULD_CHANGE_STATUS = "unknown_trials_could_change_status"
    BIPOLAR_DIAGNOSIS = "bipolar_diagnosis"


class Flag(StrEnum):
    PARTIAL_RESISTANCE = "partial_resistance"
    COMPLETE_RESISTANCE = "complete_resistance"
    CHRONIC = "chronic"
    PSEUDO_RESISTANCE_SUSPECTED = "pseudo_resistance_suspected"
    TACHYPHYLAXIS = "tachyphylaxis"
    BIPOLARITY_ON_RECORD = "bipolarity_on_record"


class Explanation(BaseModel):
    """A stable code, the sentence a clinician reads, and the sources behind it."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    citations: tuple[str, ...] = ()
