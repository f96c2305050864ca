"""The same phenotype on PostgreSQL and Spark gives exactly DuckDB's answers.

All rule scenarios (one person each) run once per backend; the outputs and the materialised
intermediates (episodes, eras, steps, candidates) are compared row for row with DuckDB's, and
DuckDB's is checked against the known answers in test_phenotype_rules.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.population.conftest import Backend, _duckdb
from tests.population.fixtures import SCENARIOS, all_scenarios, d, scenario_pid
from trdnav.knowledge.load import Knowledge
from trdnav.population.phenotype import PhenotypeResult, run_phenotype

ORDER = {
    "cohort": ["subject_id"],
    "features": ["subject_id"],
    "attrition": ["step"],
    "episodes": ["person_id", "episode_id"],
    "eras": ["person_id", "ingredient", "era_id"],
    "steps": ["person_id", "episode_id", "step_key"],
    "candidates": ["person_id"],
}


def materialise(result: PhenotypeResult) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name, keys in ORDER.items():
        table = getattr(result, name)
        out[name] = table.order_by(keys).to_pyarrow().to_pylist()
    return out


@pytest.fixture(scope="module")
def reference(kb: Knowledge) -> dict[str, list[dict[str, Any]]]:
    return materialise(run_phenotype(_duckdb().omop(all_scenarios().tables()), kb))


def test_reference_has_every_scenario_outcome(reference: dict[str, list[dict[str, Any]]]) -> None:
    cohort = {r["subject_id"]: r["cohort_start_date"] for r in reference["cohort"]}
    expected = {
        scenario_pid(s.name): d(s.index)
        for s in SCENARIOS
        if s.reaches == 10 and s.index is not None
    }
    assert cohort == expected


@pytest.mark.parametrize("backend", ["postgres", "spark"], indirect=True)
def test_same_answers_on_every_backend(
    backend: Backend, kb: Knowledge, reference: dict[str, list[dict[str, Any]]]
) -> None:
    got = materialise(run_phenotype(backend.omop(all_scenarios().tables()), kb))
    for name in ORDER:
        assert got[name] == reference[name], name
