"""Settings of the synthetic OMOP generator, all in one place.

These are *simulation choices* (how the synthetic population is mixed, how treatment journeys are
drawn, how much recording noise is added), not clinical facts: every clinical number the generator
uses — minimum doses, weeks at an adequate dose, the era persistence window, the STAR*D step-wise
remission rates, the adult age — comes from the knowledge base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

GENERATOR_VERSION = "2"  # 2: filled_not_taken trials
"""Changes whenever the same seed would give different data."""


@dataclass(frozen=True)
class PopulationMix:
    """Who is in the synthetic population (probabilities per person)."""

    mdd: float = 0.35  # has major depressive disorder journeys
    mdd_bipolar: float = 0.04  # among MDD: a bipolar diagnosis too (exclusion)
    mdd_schizophrenia: float = 0.015  # among MDD: a schizophrenia-spectrum diagnosis (exclusion)
    mdd_adolescent: float = 0.07  # among MDD: adolescent at the first episode
    adolescent_age: tuple[int, int] = (12, 17)
    mdd_female: float = 0.62
    recurrence: float = 0.30  # a second episode after remission (if observed long enough)
    observation_ends_early: float = 0.15  # observation ends during or soon after the journey
    observation_ends_early_days: tuple[int, int] = (60, 1500)  # after the first episode starts
    observation_before_episode_days: tuple[int, int] = (30, 6 * 365)
    # Persons without MDD (independent draws; a person may have several):
    hypertension: float = 0.22
    diabetes: float = 0.09
    anxiety_on_ssri: float = 0.07  # generalised anxiety with SSRI trials (no MDD code)
    unspecified_depression: float = 0.04  # only F32.A / F33.8 codes, with antidepressant switches
    insomnia_trazodone: float = 0.03  # low-dose trazodone for sleep
    bipolar: float = 0.02
    schizophrenia: float = 0.007
    office_visits: float = 0.5


@dataclass(frozen=True)
class JourneySettings:
    """How the treatment steps of one depressive episode are drawn."""

    max_steps: int = 7
    first_line_classes: tuple[tuple[str, float], ...] = (
        ("ssri", 0.70),
        ("snri", 0.12),
        ("ndri", 0.08),
        ("nassa", 0.05),
        ("multimodal", 0.03),
        ("tca", 0.02),
    )
    switch_classes: tuple[tuple[str, float], ...] = (
        ("ssri", 0.35),
        ("snri", 0.30),
        ("ndri", 0.12),
        ("nassa", 0.10),
        ("multimodal", 0.06),
        ("tca", 0.05),
        ("maoi", 0.02),
    )
    augmentation_agents: tuple[tuple[str, float], ...] = (
        ("aripiprazole", 0.35),
        ("quetiapine", 0.15),
        ("bupropion", 0.15),
        ("lithium", 0.10),
        ("brexpiprazole", 0.10),
        ("mirtazapine", 0.08),
        ("cariprazine", 0.04),
        ("lamotrigine", 0.03),
    )
    augment: float = 0.35  # after a failed adequate antidepressant trial that continues
    neuromodulation: float = 0.22  # a later step is ECT, rTMS or esketamine (after >= 2 failures)
    neuromodulation_kinds: tuple[tuple[str, float], ...] = (
        ("ect", 0.40),
        ("rtms", 0.35),
        ("esketamine", 0.25),
    )
    esketamine_as_drug_exposure: float = 0.35  # sessions recorded as drug exposures too
    course_abandoned: float = 0.12  # a neuromodulation course stopped early
    trial_kinds: tuple[tuple[str, float], ...] = (
        ("adequate", 0.74),
        ("short", 0.11),  # stopped after 2-4 weeks (side effects)
        ("low_dose", 0.07),  # stays below the minimum adequate dose
        ("poor_adherence", 0.08),  # fills with gaps longer than the persistence window
    )
    start_below_minimum: float = 0.40  # titration: first fill at half the minimum dose
    escalate: float = 0.30  # dose doubled (within the usual maximum) after two fills
    ninety_day_fills: float = 0.12  # a trial filled 90 days at a time
    early_refill: float = 0.30  # a refill a few days before the previous supply ends
    dropout: float = 0.08  # no further treatment after a failed step
    phq9_at_visit: float = 0.55
    phq9_depressed: tuple[float, float] = (16.0, 4.5)  # mean, sd of a PHQ-9 total before remission
    phq9_depressed_floor: int = 5
    phq9_remitted: tuple[float, float] = (3.0, 2.0)  # mean, sd at remission
    phq9_remitted_ceiling: int = 6
    maintenance_days: tuple[int, int] = (180, 400)
    extra_days_after_adequacy: tuple[int, int] = (7, 60)  # failed trial runs on before next step
    refill_early_days: tuple[int, int] = (1, 6)  # an early refill comes this many days early
    refill_late_days: tuple[int, int] = (0, 6)  # otherwise this many days late
    poor_adherence_gap_days: tuple[int, int] = (6, 40)  # beyond the era persistence window
    poor_adherence_trial_days: tuple[int, int] = (120, 200)  # until the next step
    short_trial_days: tuple[int, int] = (14, 35)  # until the next step
    low_dose_trial_days: tuple[int, int] = (56, 112)
    switch_overlap_days: tuple[int, int] = (0, 10)  # cross-taper of the previous drug
    remission_after_adequacy_days: tuple[int, int] = (0, 30)
    next_step_after_course_days: tuple[int, int] = (7, 45)
    treatment_after_last_step_days: tuple[int, int] = (30, 180)
    recurrence_after_gap_days: tuple[int, int] = (30, 900)  # beyond the episode gap
    episode_code_kept: float = 0.8  # a diagnosis repeats the episode's first code
    diagnosis_between_steps: float = 0.5
    diagnosis_at_remission: float = 0.6
    first_episode_years: tuple[int, int] = (2015, 2023)


@dataclass(frozen=True)
class NoiseRates:
    """Recording noise added to the true events (fractions of rows)."""

    duplicate_drug_row: float = 0.02
    missing_days_supply: float = 0.05  # also no end date then
    missing_quantity: float = 0.03
    end_date_present: float = 0.20  # most claims rows carry no end date
    condition_source_value_only: float = 0.08  # concept ids 0, only the ICD-10 text
    condition_no_source_concept: float = 0.05  # standard concept, source concept 0
    icd_without_dot: float = 0.10  # "F331" instead of "F33.1"
    mdd_person_noise_codes: float = 0.10  # an MDD person also has an F32.A row
    # Unobservable non-adherence: an adequate-looking trial whose fills were collected on time but
    # not taken. The recorded rows look adequate; the truth has no trial (a drug never taken is no
    # treatment step), so it is the generator's source of false positives.
    filled_not_taken: float = 0.04


@dataclass(frozen=True)
class SynthSettings:
    mix: PopulationMix = field(default_factory=PopulationMix)
    journey: JourneySettings = field(default_factory=JourneySettings)
    noise: NoiseRates = field(default_factory=NoiseRates)
    data_start: date = date(2010, 1, 1)
    data_end: date = date(2025, 12, 31)


DEFAULT_SETTINGS = SynthSettings()
