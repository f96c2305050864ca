"""Concept sets and ingredients resolved against the database's own vocabulary.

Nothing here knows a concept id. The concept sets of ``concept_sets.yaml`` are source codes; they
are resolved with Ibis over ``concept`` (and ``concept_ancestor`` when present) into a table of
``(concept_id, set_id)``. The ingredients are the knowledge base's drug files, turned into a small
``ibis.memtable`` (ingredient id, RxNorm code, name, kind, class, minimum dose) that the phenotype
joins into its queries; :func:`drug_ingredients` maps every drug concept to those ingredients
(docs/population.md, rules 1, 4 and 5).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.population import ConceptCode, ConceptSet
from trdnav.knowledge.schema import Drug, Role
from trdnav.population.schema import OmopTables

PREFIX_VOCABULARIES = frozenset({"ICD10CM"})
"""Vocabularies whose codes are prefixes (``F33`` covers ``F33.1``); the others match exactly."""

SESSION_CLASSES = frozenset({"nmda_antagonist"})
"""Drug classes given in sessions, not as oral trials (rule 4): never an antidepressant era."""

SESSION_DRUG = "esketamine"
"""The session drug whose exposures count as esketamine sessions (a step, rule 8)."""

KIND_ANTIDEPRESSANT = "antidepressant"
KIND_AUGMENTATION = "augmentation"
KIND_SESSION = "esketamine"

PROCEDURE_SETS = ("ect", "rtms", "esketamine")
"""Concept sets whose procedures are treatment steps (rule 8), each a modality."""

_TOKEN = re.compile(r"[a-z]+")


def normalize_code(value: ir.StringValue) -> ir.StringValue:
    """A source code as the rules compare it: dots removed, upper case."""
    return value.replace(".", "").upper()


def _codes_match(concept: ir.Table, codes: Sequence[ConceptCode]) -> ir.BooleanValue | None:
    """Concepts of ``concept`` named by ``codes`` (ICD-10-CM by prefix, others exactly)."""
    terms: list[ir.BooleanValue] = []
    by_vocab: dict[str, list[ConceptCode]] = {}
    for code in codes:
        by_vocab.setdefault(code.vocabulary, []).append(code)
    for vocab, items in sorted(by_vocab.items()):
        if vocab in PREFIX_VOCABULARIES:
            norm = normalize_code(concept.concept_code)
            match = reduce(lambda a, b: a | b, [norm.startswith(c.normalized) for c in items])
        else:
            match = concept.concept_code.isin(sorted({c.code for c in items}))
        terms.append((concept.vocabulary_id == vocab) & match)
    if not terms:
        return None
    return reduce(lambda a, b: a | b, terms)


def _resolve_codes(
    tables: OmopTables, codes: Sequence[ConceptCode]
) -> ir.Table | None:  # (concept_id)
    concept = tables.concept
    match = _codes_match(concept, codes)
    if match is None:
        return None
    direct = concept.filter(match).select(concept_id=concept.concept_id.cast("int64"))
    roots = [c for c in codes if c.descendants]
    ancestor = tables.concept_ancestor
    if not roots or ancestor is None:
        return direct
    root_match = _codes_match(concept, roots)
    root_ids = concept.filter(root_match).select(root_id=concept.concept_id)
    below = ancestor.join(root_ids, ancestor.ancestor_concept_id == root_ids.root_id).select(
        concept_id=ancestor.descendant_concept_id.cast("int64")
    )
    return direct.union(below, distinct=True)


def concept_set_members(tables: OmopTables, sets: Iterable[ConceptSet]) -> ir.Table:
    """``(concept_id, set_id)`` for every concept of the database in each of ``sets``.

    Includes minus excludes; SNOMED roots marked ``descendants`` take their descendants through
    ``concept_ancestor`` when the table is present. Distinct rows.
    """
    parts: list[ir.Table] = []
    for cset in sets:
        included = _resolve_codes(tables, cset.include)
        if included is None:
            continue
        excluded = _resolve_codes(tables, cset.exclude) if cset.exclude else None
        if excluded is not None:
            included = included.anti_join(excluded, "concept_id")
        parts.append(included.select("concept_id", set_id=ibis.literal(cset.id)))
    if not parts:
        return ibis.memtable(
            pa.table({"concept_id": pa.array([], pa.int64()), "set_id": pa.array([], pa.string())})
        )
    return reduce(lambda a, b: a.union(b), parts).distinct()


def source_value_match(value: ir.StringValue, cset: ConceptSet) -> ir.BooleanValue:
    """Whether a source value (dots removed, upper case) starts with an included code of ``cset``
    and with none of its excluded codes. SNOMED codes are not matched in source values."""
    norm = normalize_code(value)
    include = [c.normalized for c in cset.include if c.vocabulary != "SNOMED"]
    exclude = [c.normalized for c in cset.exclude if c.vocabulary != "SNOMED"]
    if not include:
        return ibis.literal(False)
    hit = reduce(lambda a, b: a | b, [norm.startswith(c) for c in include])
    if exclude:
        hit = hit & ~reduce(lambda a, b: a | b, [norm.startswith(c) for c in exclude])
    return hit.fill_null(False)


# --- ingredients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingredient:
    """One ingredient the phenotype follows, from a drug file."""

    ingredient: str
    name: str
    rxnorm: str
    kind: str
    drug_class: str
    min_dose: float | None


def ingredient_name(drug: Drug) -> str:
    """The ingredient's name as drug concept names start: the leading word of the drug's name
    (``"selegiline (transdermal)"`` -> ``"selegiline"``), lower case."""
    match = _TOKEN.match(drug.name.lower())
    return match.group(0) if match else drug.id


def ingredients(kb: Knowledge) -> list[Ingredient]:
    """The antidepressants, augmentation agents and the session drug of the knowledge base (rule 4).

    A drug that is both an antidepressant and an augmentation agent (bupropion, mirtazapine) is
    followed as an antidepressant, with the antidepressant minimum dose. Ketamine and other session
    drugs except esketamine are ignored.
    """
    out: list[Ingredient] = []
    for drug in sorted(kb.drugs.values(), key=lambda d: d.id):
        minimum: float | None
        if drug.drug_class in SESSION_CLASSES:
            if drug.id != SESSION_DRUG:
                continue
            kind, minimum = KIND_SESSION, None
        elif kb.is_antidepressant(drug) and drug.antidepressant_dose is not None:
            kind, minimum = KIND_ANTIDEPRESSANT, drug.antidepressant_dose.min_adequate_mg_per_day
        elif Role.AUGMENTATION in drug.roles and drug.augmentation_dose is not None:
            kind, minimum = KIND_AUGMENTATION, drug.augmentation_dose.min_mg_per_day
        else:
            continue
        out.append(
            Ingredient(
                ingredient=drug.id,
                name=ingredient_name(drug),
                rxnorm=drug.rxnorm or "",
                kind=kind,
                drug_class=drug.drug_class,
                min_dose=minimum,
            )
        )
    return out


def ingredient_arrow(kb: Knowledge) -> pa.Table:
    """:func:`ingredients` as an Arrow table with explicit types (portable to every backend)."""
    rows = ingredients(kb)
    return pa.table(
        {
            "ingredient_key": pa.array(range(1, len(rows) + 1), pa.int64()),
            "ingredient": pa.array([r.ingredient for r in rows], pa.string()),
            "ingredient_name": pa.array([r.name for r in rows], pa.string()),
            "rxnorm": pa.array([r.rxnorm for r in rows], pa.string()),
            "kind": pa.array([r.kind for r in rows], pa.string()),
            "drug_class": pa.array([r.drug_class for r in rows], pa.string()),
            "min_dose": pa.array([r.min_dose for r in rows], pa.float64()),
        }
    )


def ingredient_keys(kb: Knowledge) -> dict[str, int]:
    """The integer key of each ingredient in :func:`ingredient_arrow` (the big queries sort and
    group on it rather than on the name)."""
    return {r.ingredient: k for k, r in enumerate(ingredients(kb), start=1)}


def ingredient_table(kb: Knowledge) -> ir.Table:
    """:func:`ingredient_arrow` as an ``ibis.memtable``."""
    return ibis.memtable(ingredient_arrow(kb))


def _leading_word(name: ir.StringValue) -> ir.StringValue:
    return name.lower().re_extract(r"^([a-z]+)", 1).nullif("")


def drug_ingredients(tables: OmopTables, kb: Knowledge, lookup: ir.Table | None = None) -> ir.Table:
    """Every drug concept of the followed ingredients, with its strength (rules 4 and 5).

    Columns: ``drug_concept_id, ingredient, ingredient_key, ingredient_concept_id`` (null when
    found by name),
    ``strength_mg`` (null when unknown). One drug concept per ingredient, first match wins:
    a descendant (through ``concept_ancestor``) of the RxNorm Ingredient concept whose code is
    the drug file's RxNorm code, or that ingredient concept itself; else a drug concept whose name
    starts with the ingredient's name as a whole word. Strength: ``drug_strength.amount_value``
    for the drug and ingredient when its unit is milligrams (UCUM ``mg``; a unit the concept
    table does not know is read as mg), else the first ``<number> MG`` after the ingredient's
    name in the concept name. ``lookup``: :func:`ingredient_table` (built when not given).
    """
    concept = tables.concept
    if lookup is None:
        lookup = ingredient_table(kb)
    rx = concept.filter(
        (concept.vocabulary_id == "RxNorm") & (concept.concept_class_id == "Ingredient")
    )
    with_code = lookup.filter(lookup.rxnorm != "")
    ing = rx.join(with_code, rx.concept_code == with_code.rxnorm).select(
        ingredient_concept_id=rx.concept_id.cast("int64"), ingredient=with_code.ingredient
    )
    by_code = ing.select(
        drug_concept_id=ing.ingredient_concept_id,
        ingredient="ingredient",
        ingredient_concept_id="ingredient_concept_id",
    )
    ancestor = tables.concept_ancestor
    if ancestor is not None:
        below = ancestor.join(ing, ancestor.ancestor_concept_id == ing.ingredient_concept_id)
        below = below.select(
            drug_concept_id=below.descendant_concept_id.cast("int64"),
            ingredient=below.ingredient,
            ingredient_concept_id=below.ingredient_concept_id,
        )
        by_code = by_code.union(below, distinct=True)
    drugs = concept.filter(concept.domain_id == "Drug").select(
        drug_concept_id=concept.concept_id.cast("int64"), word=_leading_word(concept.concept_name)
    )
    unmatched = drugs.anti_join(by_code, "drug_concept_id")
    by_name = unmatched.join(lookup, unmatched.word == lookup.ingredient_name).select(
        drug_concept_id=unmatched.drug_concept_id,
        ingredient=lookup.ingredient,
        ingredient_concept_id=ibis.null("int64"),
    )
    mapped = by_code.union(by_name)
    return _with_strength(tables, mapped, lookup)


def _with_strength(tables: OmopTables, mapped: ir.Table, lookup: ir.Table) -> ir.Table:
    concept = tables.concept
    names = concept.select(
        drug_concept_id=concept.concept_id.cast("int64"), cname=concept.concept_name
    )
    m = mapped.join(lookup.select("ingredient", "ingredient_name"), "ingredient").left_join(
        names, "drug_concept_id"
    )
    lowered = m.cname.lower()
    at = lowered.find(m.ingredient_name)
    rest = lowered.substr(ibis.greatest(at, 0))
    parsed = rest.re_extract(r"([0-9]+(\.[0-9]+)?) mg", 1).nullif("").cast("float64")
    m = m.select("drug_concept_id", "ingredient", "ingredient_concept_id", name_mg=parsed)
    keys = lookup.select("ingredient", "ingredient_key")
    strength = tables.drug_strength
    if strength is None:
        return m.select(
            "drug_concept_id", "ingredient", "ingredient_concept_id", strength_mg=m.name_mg
        ).join(keys, "ingredient")
    units = concept.filter(concept.vocabulary_id == "UCUM").select(
        unit_id=concept.concept_id, unit_code=concept.concept_code.lower()
    )
    ds = strength.left_join(units, strength.amount_unit_concept_id == units.unit_id)
    ds = ds.filter(ds.unit_code.isnull() | (ds.unit_code == "mg")).filter(
        ds.amount_value.notnull() & (ds.amount_value > 0)
    )
    ds = ds.group_by(
        drug_concept_id=ds.drug_concept_id.cast("int64"),
        ingredient_concept_id=ds.ingredient_concept_id.cast("int64"),
    ).aggregate(table_mg=ds.amount_value.cast("float64").max())
    j = m.left_join(
        ds,
        [
            m.drug_concept_id == ds.drug_concept_id,
            m.ingredient_concept_id == ds.ingredient_concept_id,
        ],
    )
    out = j.select(
        drug_concept_id=m.drug_concept_id,
        ingredient=m.ingredient,
        ingredient_concept_id=m.ingredient_concept_id,
        strength_mg=ibis.coalesce(j.table_mg, j.name_mg),
    )
    return out.join(keys, "ingredient")
