"""The generator's ground truth and the Ibis phenotype apply the same rules (DuckDB).

Without recording noise the phenotype must find exactly the persons and index dates of the ground
truth (a disagreement is a defect on one side); with the default noise it must still find most.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from trdnav.knowledge.load import Knowledge
from trdnav.population.backends import open_omop, to_arrow
from trdnav.population.evaluate import Agreement, evaluate_cohort
from trdnav.population.phenotype import run_phenotype
from trdnav.population.schema import omop_tables
from trdnav.population.synth import DEFAULT_SETTINGS, NoiseRates, generate_omop

PERSONS = 3000
NO_NOISE = NoiseRates(
    duplicate_drug_row=0,
    missing_days_supply=0,
    missing_quantity=0,
    end_date_present=0.2,
    condition_source_value_only=0,
    condition_no_source_concept=0,
    icd_without_dot=0,
    mdd_person_noise_codes=0,
    filled_not_taken=0,
)


def _agreement(folder: Path, kb: Knowledge) -> Agreement:
    source = open_omop(str(folder))
    try:
        cohort = to_arrow(run_phenotype(omop_tables(source.tables), kb).cohort)
    finally:
        source.close()
    return evaluate_cohort(cohort, pq.read_table(folder / "ground_truth.parquet"))


def test_without_noise_the_phenotype_finds_exactly_the_ground_truth(
    tmp_path: Path, kb: Knowledge
) -> None:
    settings = replace(DEFAULT_SETTINGS, noise=NO_NOISE)
    summary = generate_omop(tmp_path / "clean", PERSONS, 5, kb=kb, settings=settings)
    assert summary.trd_persons > 100
    a = _agreement(tmp_path / "clean", kb)
    assert (a.false_positives, a.false_negatives) == (0, 0), a.to_markdown()
    assert a.true_positives == summary.trd_persons
    assert a.index_exact == 1.0


def test_with_noise_the_phenotype_still_finds_most_trd_persons(
    tmp_path: Path, kb: Knowledge
) -> None:
    summary = generate_omop(tmp_path / "noisy", PERSONS, 5, kb=kb)
    a = _agreement(tmp_path / "noisy", kb)
    assert a.true_positives + a.false_negatives == summary.trd_persons
    assert a.sensitivity is not None and a.sensitivity > 0.9
    assert a.ppv is not None and a.ppv > 0.9
