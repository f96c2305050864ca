"""Vocabulary fallbacks and parameters: no concept_ancestor, no drug_strength, other KB values.

Concept sets and ingredients resolve through the database's own vocabulary; when
``concept_ancestor`` is absent, drug concepts roll up to ingredients by name and SNOMED codes count
without their descendants (rules 1 and 4); when ``drug_strength`` is absent the strength comes from
the concept name (rule 5). Every number comes from the knowledge base: changing a parameter changes
the answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from tests.population.conftest import Backend
from tests.population.fixtures import SCENARIOS, Omop, d
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.population import IntFact
from trdnav.population.concepts import (
    concept_set_members,
    drug_ingredients,
    ingredient_name,
    ingredients,
)
from trdnav.population.phenotype import PhenotypeResult, run_phenotype

NAMES = (
    "base",
    "mdd_snomed_descendant",
    "bipolar_snomed_descendant",
    "dose_from_drug_strength",
    "dose_from_concept_name",
    "unknown_dose_adequate",
)


def build(names: tuple[str, ...] = NAMES) -> Omop:
    omop = Omop()
    for pid, name in enumerate(names, start=1):
        next(s for s in SCENARIOS if s.name == name).build(omop, pid)
    return omop


def index_dates(result: PhenotypeResult) -> dict[int, Any]:
    return {
        r["person_id"]: r["index_date"]
        for r in result.candidates.to_pyarrow().to_pylist()
        if r["in_cohort"]
    }


def test_without_concept_ancestor(duckdb_backend: Backend, kb: Knowledge) -> None:
    tables = duckdb_backend.omop(build().tables(ancestor=False))
    assert tables.concept_ancestor is None
    result = run_phenotype(tables, kb)
    # drugs found by name; the SNOMED child of MDD no longer counts (person 2), nor does the
    # SNOMED child of bipolar disorder exclude (person 3)
    assert index_dates(result) == {1: d(120), 3: d(120), 4: d(120), 5: d(120), 6: d(120)}
    doses = result.exposures.filter(result.exposures.ingredient == "sertraline")
    got = {r["person_id"]: r["daily_dose"] for r in doses.to_pyarrow().to_pylist()}
    assert got == {1: 50.0, 3: 50.0, 4: 50.0, 5: 50.0, 6: None}


def test_without_drug_strength(duckdb_backend: Backend, kb: Knowledge) -> None:
    tables = duckdb_backend.omop(build().tables(strength=False))
    assert tables.drug_strength is None
    result = run_phenotype(tables, kb)
    # person 3 excluded (bipolar descendant); every dose from the concept names
    assert index_dates(result) == {1: d(120), 2: d(120), 4: d(120), 5: d(120), 6: d(120)}


def test_lazy_and_materialised_runs_agree(duckdb_backend: Backend, kb: Knowledge) -> None:
    omop = build(("base", "bipolar_snomed_descendant", "dose_from_concept_name"))
    eager = run_phenotype(duckdb_backend.omop(omop.tables()), kb)
    lazy = run_phenotype(duckdb_backend.omop(omop.tables()), kb, materialize=False)
    for name in ("cohort", "features", "attrition"):
        keys = ["step"] if name == "attrition" else ["subject_id"]
        a = getattr(eager, name).order_by(keys).to_pyarrow().to_pylist()
        b = getattr(lazy, name).order_by(keys).to_pyarrow().to_pylist()
        assert a == b, name


def test_drug_strength_in_grams_is_not_read_as_milligrams(
    duckdb_backend: Backend, kb: Knowledge
) -> None:
    omop = Omop()
    omop.person(1)
    cid = omop.clinical_drug("sertraline", 50)
    gram = omop.concept("UCUM", "g", "gram", domain="Unit", concept_class="Unit")
    omop.rows["drug_strength"] = [
        {
            "drug_concept_id": cid,
            "ingredient_concept_id": omop.ingredient("sertraline"),
            "amount_value": 0.05,
            "amount_unit_concept_id": gram,
        }
    ]
    tables = duckdb_backend.omop(omop.tables())
    rows = drug_ingredients(tables, kb).to_pyarrow().to_pylist()
    by_id = {r["drug_concept_id"]: r for r in rows}
    assert by_id[cid]["strength_mg"] == 50.0  # from the name, not 0.05


def test_combination_product_maps_to_both_ingredients(
    duckdb_backend: Backend, kb: Knowledge
) -> None:
    omop = Omop()
    omop.person(1)
    combo = omop.concept(
        "RxNorm",
        "combo",
        "fluoxetine 25 MG / olanzapine 6 MG Oral Capsule",
        domain="Drug",
        concept_class="Clinical Drug",
    )
    omop.ancestor(omop.ingredient("fluoxetine"), combo)
    omop.ancestor(omop.ingredient("olanzapine"), combo)
    for with_ancestor in (True, False):
        tables = duckdb_backend.omop(omop.tables(ancestor=with_ancestor, strength=False))
        rows = drug_ingredients(tables, kb).filter(lambda t: t.drug_concept_id == combo)
        got = sorted((r["ingredient"], r["strength_mg"]) for r in rows.to_pyarrow().to_pylist())
        # without concept_ancestor only the leading name counts
        expected = (
            [("fluoxetine", 25.0), ("olanzapine", 6.0)] if with_ancestor else [("fluoxetine", 25.0)]
        )
        assert got == expected


def test_concept_sets_resolve_codes_not_ids(duckdb_backend: Backend, kb: Knowledge) -> None:
    omop = Omop()
    omop.person(1)
    ids = {
        code: omop.concept("ICD10CM", code)
        for code in ("F32.1", "F33", "F33.1", "F33.8", "F32.8", "F32.A", "F31.0")
    }
    tables = duckdb_backend.omop(omop.tables())
    sets = [kb.population.concept_set(s) for s in ("mdd", "bipolar")]
    rows = concept_set_members(tables, sets).to_pyarrow().to_pylist()
    got = {(r["concept_id"], r["set_id"]) for r in rows}
    assert got == {
        (ids["F32.1"], "mdd"),
        (ids["F33"], "mdd"),
        (ids["F33.1"], "mdd"),
        (ids["F31.0"], "bipolar"),
    }


def test_ingredients_follow_the_knowledge_base(kb: Knowledge) -> None:
    found = {i.ingredient: i for i in ingredients(kb)}
    assert "ketamine" not in found
    assert found["esketamine"].kind == "esketamine"
    assert found["bupropion"].kind == "antidepressant"
    assert found["aripiprazole"].kind == "augmentation"
    for drug_id, ing in found.items():
        drug = kb.drugs[drug_id]
        if ing.kind == "antidepressant":
            assert drug.antidepressant_dose is not None
            assert ing.min_dose == drug.antidepressant_dose.min_adequate_mg_per_day
        elif ing.kind == "augmentation":
            assert drug.augmentation_dose is not None
            assert ing.min_dose == drug.augmentation_dose.min_mg_per_day
    assert ingredient_name(kb.drugs["selegiline_transdermal"]) == "selegiline"


def with_parameter(kb: Knowledge, name: str, value: int) -> Knowledge:
    params = kb.population.parameters
    old: IntFact = getattr(params, name)
    new_params = params.model_copy(update={name: old.model_copy(update={"value": value})})
    population = kb.population.model_copy(update={"parameters": new_params})
    return dataclasses.replace(kb, population=population)


def test_rules_follow_the_parameters(duckdb_backend: Backend, kb: Knowledge) -> None:
    """Four parameters changed at once; each person flips on exactly one of them (with the KB's
    values: no index, no index, index d120, not adult), so ignoring any one fails the test."""
    changed = kb
    for parameter, value in (
        ("episode_gap_days", 366),  # person 1: one episode again
        ("era_persistence_days", 31),  # person 2: the two exposures join
        ("min_weeks_at_adequate_dose", 7),  # person 3: 42 days no longer adequate
        ("min_age_at_index", 17),  # person 4: 17 is old enough
    ):
        changed = with_parameter(changed, parameter, value)
    names = (
        "episode_gap_366_two_episodes",
        "era_gap_31_splits",
        "adequate_42_days",
        "age_17_at_index",
    )
    before = index_dates(run_phenotype(duckdb_backend.omop(build(names).tables()), kb))
    assert before == {3: d(120)}
    after = index_dates(run_phenotype(duckdb_backend.omop(build(names).tables()), changed))
    assert after == {1: d(460), 2: d(160), 4: d(120)}


def test_empty_tables_give_an_empty_cohort(duckdb_backend: Backend, kb: Knowledge) -> None:
    omop = Omop()
    tables = omop.tables()
    assert all(isinstance(t, pa.Table) and t.num_rows == 0 for t in tables.values())
    result = run_phenotype(duckdb_backend.omop(tables), kb)
    assert result.cohort.count().to_pyarrow().as_py() == 0
    assert result.features.count().to_pyarrow().as_py() == 0
    assert [r["persons"] for r in result.attrition.to_pyarrow().to_pylist()] == [0] * 10
