"""Knowledge of the population phenotype as data: concept sets, rule parameters, synthetic figures.

Three files under ``knowledge/data/population/``:

- ``concept_sets.yaml``: diagnoses, exclusions and procedures as source codes (ICD-10-CM prefixes,
  SNOMED CT roots with descendants, CPT-4 and HCPCS codes). The phenotype resolves them against the
  database's own ``concept`` table, so no OMOP concept id is hard-coded anywhere.
- ``phenotype.yaml``: every number the phenotype uses (era persistence window, episode gap, adequate
  duration, minimum age, …), each a :class:`~trdnav.knowledge.schema.Sourced` fact.
- ``synthetic.yaml``: the clinical figures the synthetic generator draws journeys from (STAR*D
  step-wise remission).

Antidepressant and augmentation ingredients, their classes, RxNorm codes and minimum adequate doses
come from the drug files (``drugs/*.yaml``); nothing here repeats them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from trdnav.errors import Problem
from trdnav.knowledge.schema import Sourced, Strict

Vocabulary = Literal["ICD10CM", "SNOMED", "CPT4", "HCPCS", "RxNorm", "LOINC"]
ConceptSetRole = Literal["diagnosis", "severity", "exclusion", "procedure"]


class ConceptCode(Strict):
    """One source code of a concept set."""

    vocabulary: Vocabulary
    code: str = Field(min_length=1)
    name: str | None = None
    descendants: bool = Field(
        default=False, description="SNOMED: its descendants through concept_ancestor count too"
    )
    note: str | None = None

    @property
    def normalized(self) -> str:
        """The code without dots, upper case: ``"F33.1"`` -> ``"F331"``."""
        return self.code.replace(".", "").upper()


class ConceptSet(Sourced):
    id: str
    label: str
    role: ConceptSetRole
    include: tuple[ConceptCode, ...] = Field(min_length=1)
    exclude: tuple[ConceptCode, ...] = ()


class IntFact(Sourced):
    value: int


class StrFact(Sourced):
    value: str


class BoolFact(Sourced):
    value: bool


class ScoreBand(Strict):
    min: int
    max: int
    points: int


class BandsFact(Sourced):
    bands: tuple[ScoreBand, ...] = Field(min_length=1)

    def points(self, score: int) -> int | None:
        for band in self.bands:
            if band.min <= score <= band.max:
                return band.points
        return None


class PhenotypeParameters(Strict):
    cohort_definition_id: IntFact
    era_persistence_days: IntFact
    default_days_supply: IntFact
    episode_gap_days: IntFact
    episode_lookback_days: IntFact
    min_weeks_at_adequate_dose: IntFact
    min_failed_trials: IntFact
    count_augmentation_as_trial: BoolFact
    unknown_dose_is_adequate: BoolFact
    min_age_at_index: IntFact
    severity_window_days: IntFact
    phq9_total_loinc: StrFact
    phq9_to_msm_severity: BandsFact


class RatesFact(Sourced):
    values: tuple[float, ...] = Field(min_length=1)


class SyntheticFigures(Strict):
    stard_remission_by_step: RatesFact


class PopulationKnowledge(Strict):
    concept_sets: dict[str, ConceptSet]
    parameters: PhenotypeParameters
    synthetic: SyntheticFigures

    def concept_set(self, set_id: str) -> ConceptSet:
        return self.concept_sets[set_id]


def _read(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem("", "unreadable", str(exc), str(path)))
        return None


def _problems_of(exc: ValidationError, path: Path) -> list[Problem]:
    return [
        Problem(".".join(str(p) for p in err["loc"]), "invalid", err["msg"], str(path))
        for err in exc.errors()
    ]


def load_population(folder: Path, problems: list[Problem]) -> PopulationKnowledge | None:
    """Read and validate the three population files; problems go to ``problems``."""
    sets_path = folder / "concept_sets.yaml"
    params_path = folder / "phenotype.yaml"
    synth_path = folder / "synthetic.yaml"
    concept_sets: dict[str, ConceptSet] = {}
    for raw in _read(sets_path, problems) or []:
        try:
            cset = ConceptSet.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_problems_of(exc, sets_path))
            continue
        if cset.id in concept_sets:
            problems.append(
                Problem(cset.id, "duplicate_id", "concept set defined twice", str(sets_path))
            )
        concept_sets[cset.id] = cset
    parameters: PhenotypeParameters | None = None
    synthetic: SyntheticFigures | None = None
    try:
        parameters = PhenotypeParameters.model_validate(_read(params_path, problems))
    except ValidationError as exc:
        problems.extend(_problems_of(exc, params_path))
    try:
        synthetic = SyntheticFigures.model_validate(_read(synth_path, problems))
    except ValidationError as exc:
        problems.extend(_problems_of(exc, synth_path))
    for required in (
        "mdd",
        "mdd_psychotic",
        "bipolar",
        "schizophrenia_spectrum",
        "ect",
        "rtms",
        "esketamine",
    ):
        if required not in concept_sets:
            problems.append(
                Problem(
                    required,
                    "missing_concept_set",
                    "the phenotype needs this concept set",
                    str(sets_path),
                )
            )
    if parameters is None or synthetic is None:
        return None
    return PopulationKnowledge(
        concept_sets=concept_sets, parameters=parameters, synthetic=synthetic
    )
