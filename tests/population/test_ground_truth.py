"""The phenotype on synthetic OMOP data agrees with the generator's ground truth.

20,000 synthetic persons (seed 7) are generated once for the module, the phenotype runs on DuckDB
over the Parquet folder exactly as ``trdnav cohort`` opens it, and the cohort is scored against
``ground_truth.parquet`` with :func:`trdnav.population.evaluate.evaluate_cohort`.

The floors below are the measured values less a margin of about 0.05
(docs/benchmarks.md). Measured on 20,000 persons, seed 7 (generator version 2, knowledge base
2026.11.0): sensitivity 0.991 (2,340 of 2,362), PPV 0.951 (121 false positives), index date exact
and within ±30 days for 0.880 of the true positives (187 earlier, 94 later than the truth). The
truth applies the same rules to the *true* events, so what the phenotype misses is what the
recording noise (duplicate rows, missing days of supply, source-value-only codes, early refills)
costs it, and its false positives are the trials whose fills were collected but never taken
(``filled_not_taken``: the rows look adequate, the truth holds no trial; that also moves index
dates earlier). A drop below a floor means the phenotype or the generator changed behaviour. The
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
SENSITIVITY_FLOOR = 0.94  # measured 0.991
PPV_FLOOR = 0.90  # measured 0.951
INDEX_WITHIN_30_DAYS_FLOOR = 0.83  # measured 0.880
INDEX_EXACT_FLOOR = 0.83  # measured 0.880


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
