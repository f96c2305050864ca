"""The synthetic vocabulary resolves every concept-set code and every drug of the knowledge base."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from trdnav.knowledge.load import Knowledge
from trdnav.population.synth import LOCAL_CONCEPT_BASE, build_vocabulary
from trdnav.population.synth.vocabulary import (
    build_vocabulary_index,
    concept_set_codes,
    is_antidepressant_trial_drug,
    strengths_mg,
)


@pytest.fixture(scope="module")
def vocab(kb: Knowledge) -> dict[str, pa.Table]:
    return build_vocabulary(kb)


def _rows(t: pa.Table) -> list[dict[str, object]]:
    return t.to_pylist()


def test_every_concept_is_local_and_unique(vocab: dict[str, pa.Table]) -> None:
    ids = vocab["concept"].column("concept_id").to_pylist()
    assert len(ids) == len(set(ids))
    assert min(ids) > LOCAL_CONCEPT_BASE
    known = set(ids)
    for name, cols in (
        ("concept_ancestor", ("ancestor_concept_id", "descendant_concept_id")),
        ("drug_strength", ("drug_concept_id", "ingredient_concept_id", "amount_unit_concept_id")),
    ):
        for col in cols:
            assert set(vocab[name].column(col).to_pylist()) <= known, (name, col)


def test_every_concept_set_code_resolves(kb: Knowledge, vocab: dict[str, pa.Table]) -> None:
    concepts = _rows(vocab["concept"])
    for vocabulary, code in concept_set_codes(kb):
        if vocabulary == "ICD10CM":  # a prefix: at least one code under it
            norm = code.replace(".", "").upper()
            hits = [
                c
                for c in concepts
                if c["vocabulary_id"] == "ICD10CM"
                and str(c["concept_code"]).replace(".", "").startswith(norm)
            ]
        else:
            hits = [
                c
                for c in concepts
                if c["vocabulary_id"] == vocabulary and c["concept_code"] == code
            ]
        assert hits, (vocabulary, code)


def test_the_phq9_total_is_a_loinc_measurement(kb: Knowledge, vocab: dict[str, pa.Table]) -> None:
    loinc = kb.population.parameters.phq9_total_loinc.value
    hits = [c for c in _rows(vocab["concept"]) if c["concept_code"] == loinc]
    assert [(c["vocabulary_id"], c["domain_id"]) for c in hits] == [("LOINC", "Measurement")]


def test_every_kb_rxnorm_is_a_standard_ingredient(
    kb: Knowledge, vocab: dict[str, pa.Table]
) -> None:
    ingredients = {
        c["concept_code"]: c
        for c in _rows(vocab["concept"])
        if c["vocabulary_id"] == "RxNorm" and c["concept_class_id"] == "Ingredient"
    }
    with_code = [d for d in kb.drugs.values() if d.rxnorm]
    assert with_code
    for drug in with_code:
        c = ingredients[drug.rxnorm]
        assert (c["standard_concept"], c["domain_id"]) == ("S", "Drug"), drug.id
        assert drug.name.lower().startswith(str(c["concept_name"]))


def test_clinical_drugs_roll_up_to_their_ingredient_with_their_strength(
    kb: Knowledge, vocab: dict[str, pa.Table]
) -> None:
    concepts = {c["concept_id"]: c for c in _rows(vocab["concept"])}
    ancestors = {
        (r["ancestor_concept_id"], r["descendant_concept_id"])
        for r in _rows(vocab["concept_ancestor"])
    }
    strengths = _rows(vocab["drug_strength"])
    assert strengths
    for row in strengths:
        drug, ing = concepts[row["drug_concept_id"]], concepts[row["ingredient_concept_id"]]
        assert drug["concept_class_id"] == "Clinical Drug"
        assert (ing["concept_id"], drug["concept_id"]) in ancestors
        assert (drug["concept_id"], drug["concept_id"]) in ancestors
        # the name gives the same strength as drug_strength, and starts with the ingredient
        name = str(drug["concept_name"])
        assert name.startswith(str(ing["concept_name"]) + " ")
        m = re.search(r" ([0-9.]+) MG", name)
        assert m is not None and float(m.group(1)) == row["amount_value"], name
    sertraline = [
        str(concepts[r["drug_concept_id"]]["concept_name"])
        for r in strengths
        if concepts[r["ingredient_concept_id"]]["concept_code"] == kb.drugs["sertraline"].rxnorm
    ]
    assert "sertraline 50 MG Oral Tablet" in sertraline


def test_each_minimum_adequate_dose_is_a_whole_number_of_units(kb: Knowledge) -> None:
    for drug in kb.drugs.values():
        if not drug.rxnorm or not is_antidepressant_trial_drug(kb, drug):
            continue
        assert drug.antidepressant_dose is not None
        minimum = drug.antidepressant_dose.min_adequate_mg_per_day
        units = [minimum / s for s in strengths_mg(drug)]
        assert any(u == int(u) and 1 <= u <= 4 for u in units), drug.id
        assert any(s < minimum for s in strengths_mg(drug)), drug.id  # a sub-therapeutic unit


def test_snomed_roots_have_descendants_and_no_upward_links(
    kb: Knowledge, vocab: dict[str, pa.Table]
) -> None:
    voc = build_vocabulary_index(kb)
    ancestors = {
        (r["ancestor_concept_id"], r["descendant_concept_id"])
        for r in _rows(vocab["concept_ancestor"])
    }
    for cset in kb.population.concept_sets.values():
        for entry in cset.include:
            if entry.vocabulary != "SNOMED":
                continue
            root = voc.snomed[entry.code]
            assert (root, root) in ancestors
            below = [d for a, d in ancestors if a == root and d != root]
            assert below, entry.code
    mdd, parent = voc.snomed["370143000"], voc.snomed["35489007"]
    assert (parent, mdd) in ancestors and (mdd, parent) not in ancestors


def test_icd_codes_map_to_standard_snomed_concepts_consistently(kb: Knowledge) -> None:
    """An ICD-10-CM code the MDD set leaves out must not map into the MDD SNOMED hierarchy, or the
    standard concept would bring it back in."""
    voc = build_vocabulary_index(kb)
    tables = voc.tables
    below_mdd = {
        r["descendant_concept_id"]
        for r in _rows(tables["concept_ancestor"])
        if r["ancestor_concept_id"] == voc.snomed["370143000"]
    }
    mdd = kb.population.concept_set("mdd")
    include = tuple(c.normalized for c in mdd.include if c.vocabulary == "ICD10CM")
    exclude = tuple(c.normalized for c in mdd.exclude if c.vocabulary == "ICD10CM")
    assert include and exclude
    for code, snomed in voc.icd10_snomed.items():
        norm = code.replace(".", "")
        icd_mdd = norm.startswith(include) and not norm.startswith(exclude)
        assert (snomed in below_mdd) == icd_mdd, code
