"""The phenotype on synthetic OMOP data agrees with the generator's ground truth.

20,000 synthetic persons (seed 7) are generated once for the module, the phenotype runs on DuckDB
over the Parquet folder exactly as ``trdnav cohort`` opens it, and the cohort is scored against
``ground_truth.parquet`` with :func:`trdnav.population.evaluate.evaluate_cohort`.

The floors below are the measured values less a margin of about 0.05
(docs/benchmarks-population.md). Measured on 20,000 persons, seed 7 (generator version 1,
knowledge base 2026.11.0, 2026-12-01 11:50): sensitivity 0.989 (2,365 of 2,391), PPV 1.000 (no
false positive; 0.9997 on 100,000), index date exact for 0.964 and within ±30 days for 0.966 of
the true positives. The truth applies the same rules to the *true* events, so the disagreement is
what the recording noise (missing days of supply or quantity, duplicate rows, source-value-only
codes) costs; a drop below a floor means the phenotype or the generator changed behaviour. The
generator's determinism (same seed, same data; another seed, other data) is tested in
test_synth_generate.py.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from trdnav.knowledge.load import Knowledge
from trdnav.population.backends import open_omop
from trdnav.population.evaluate import Agreement, evaluate_cohort
from trdnav.population.phenotype import run_phenotype
from trdnav.population.schema import check_tables, omop_tables
from trdnav.population.synth import generate_omop

PERSONS = 20_000
SEED = 7
SENSITIVITY_FLOOR = 0.93  # measured 0.989
PPV_FLOOR = 0.95  # measured 1.000
INDEX_WITHIN_30_DAYS_FLOOR = 0.91  # measured 0.966
INDEX_EXACT_FLOOR = 0.91  # measured 0.964


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "omop"
    generate_omop(out, PERSONS, SEED)
    return out


@pytest.fixture(scope="module")
def agreement(synthetic: Path, kb: Knowledge) -> Agreement:
    with open_omop(str(synthetic)) as source:
        assert check_tables(source.tables) == []
        cohort = run_phenotype(omop_tables(source.tables), kb).cohort.to_pyarrow()
    return evaluate_cohort(cohort, pq.read_table(synthetic / "ground_truth.parquet"))


def test_the_synthetic_population_holds_trd_and_non_trd_persons(agreement: Agreement) -> None:
    assert agreement.persons == PERSONS
    # about one person in eight is truly TRD; enough of both kinds to measure anything
    assert 0.05 * PERSONS < agreement.truly_trd < 0.25 * PERSONS
    assert agreement.true_negatives > PERSONS / 2


def test_the_phenotype_finds_the_truly_trd_persons(agreement: Agreement) -> None:
    assert agreement.sensitivity is not None
    assert agreement.sensitivity >= SENSITIVITY_FLOOR, agreement.to_markdown()


def test_the_cohort_holds_few_persons_who_are_not_trd(agreement: Agreement) -> None:
    assert agreement.ppv is not None
    assert agreement.ppv >= PPV_FLOOR, agreement.to_markdown()


def test_index_dates_agree_with_the_truth(agreement: Agreement) -> None:
    assert agreement.index_within_window is not None and agreement.index_exact is not None
    assert agreement.index_within_window >= INDEX_WITHIN_30_DAYS_FLOOR, agreement.to_markdown()
    assert agreement.index_exact >= INDEX_EXACT_FLOOR, agreement.to_markdown()
