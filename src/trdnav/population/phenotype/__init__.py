"""The TRD phenotype over OMOP CDM, written once in Ibis (docs/population.md, rules 1-11).

:func:`run_phenotype` builds the cohort, the feature table and the attrition table. The same
expressions run on DuckDB, PostgreSQL and PySpark.

Materialisation: the three outputs share the expensive middle (exposures, eras, episodes, steps).
Ibis expressions are lazy, so without care each output would recompute it. With
``materialize=True`` (the default) :func:`run_phenotype` writes the intermediates once as temporary
tables of the tables' own connection (DuckDB and PostgreSQL: ``create_table(temp=True)``; PySpark:
a local checkpoint registered as a temporary view), so the call itself runs the heavy part and
the returned tables are cheap to read.
With ``materialize=False`` nothing runs until a result is executed.

Each materialised intermediate is a named step (``"drug eras"``, ``"treatment steps"`` ...): a
database failure while it runs raises :class:`~trdnav.population.failures.StepFailedError` naming
it (``trdnav cohort`` reports it in one line).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.population import failures
from trdnav.population.concepts import (
    SESSION_DRUG,
    drug_ingredients,
    ingredient_arrow,
    ingredient_keys,
)
from trdnav.population.phenotype.cohort import (
    Criterion,
    attrition_counts,
    attrition_table,
    candidates,
    cohort_table,
    criteria,
    episode_index,
    first_index,
)
from trdnav.population.phenotype.conditions import diagnosis_records, episodes, excluded_persons
from trdnav.population.phenotype.eras import eras
from trdnav.population.phenotype.exposures import exposures, readable
from trdnav.population.phenotype.features import features, phq9_records
from trdnav.population.phenotype.steps import procedure_records, steps
from trdnav.population.schema import OmopTables

__all__ = ["Criterion", "PhenotypeResult", "criteria", "run_phenotype"]

_COUNTER = itertools.count()


@dataclass(frozen=True)
class PhenotypeResult:
    """The outputs of :func:`run_phenotype` and the intermediates the tests look into."""

    cohort: ir.Table
    """OMOP cohort layout: cohort_definition_id, subject_id, cohort_start_date, cohort_end_date."""
    features: ir.Table
    """One row per cohort person (docs/population.md, Features)."""
    attrition: ir.Table
    """step, criterion_id, criterion, persons: one row per criterion, in order."""
    episodes: ir.Table
    exposures: ir.Table
    eras: ir.Table
    steps: ir.Table
    episode_index: ir.Table
    candidates: ir.Table


def _label() -> str:
    return f"trdnav_tmp_{os.getpid()}_{next(_COUNTER)}"


def _lookup(table: ir.Table, kb: Knowledge) -> ir.Table:
    """The ingredient lookup on the tables' backend. PySpark registers an ``ibis.memtable``
    through pandas as a Python-backed RDD, which starts Python workers on every scan; an Arrow
    DataFrame is a local relation inside the JVM."""
    data = ingredient_arrow(kb)
    con = ibis.get_backend(table)
    if getattr(con, "name", "") == "pyspark":
        label = _label()
        con._session.createDataFrame(data).createOrReplaceTempView(label)
        return con.table(label)
    return ibis.memtable(data)


def _materializer(table: ir.Table, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return lambda step, expr: expr
    con = ibis.get_backend(table)
    name = getattr(con, "name", "")

    def write(step: str, expr: ir.Table) -> ir.Table:
        label = _label()
        with failures.step(step):
            if name == "pyspark":
                # cache() keeps the lineage in every later plan (plans grow until the driver runs
                # out of memory) and does not register memtables; a local checkpoint cuts it.
                con._run_pre_execute_hooks(expr)
                frame = con._session.sql(con.compile(expr)).localCheckpoint()
                frame.createOrReplaceTempView(label)
                return con.table(label)
            return con.create_table(label, expr, temp=True)

    return write


def run_phenotype(
    tables: OmopTables, kb: Knowledge, *, materialize: bool = True
) -> PhenotypeResult:
    """The TRD cohort, features and attrition of ``tables`` (see the module docstring)."""
    keep = _materializer(tables.person, materialize)
    with failures.step("ingredient lookup"):
        lookup = _lookup(tables.person, kb)

    dx = keep("diagnoses", diagnosis_records(tables, kb, ("mdd", "mdd_psychotic")))
    mdd = dx.filter(dx.set_id == "mdd").select("person_id", "condition_date")
    psychotic = dx.filter(dx.set_id == "mdd_psychotic").select("person_id", "condition_date")
    mdd_persons = mdd.select("person_id").distinct()
    excluded = keep("exclusions", excluded_persons(tables, kb))
    eligible = keep("eligible persons", mdd_persons.anti_join(excluded, "person_id"))
    mdd_eligible = mdd.semi_join(eligible, "person_id")

    eps = keep("depressive episodes", episodes(mdd_eligible, tables, kb))
    drug_map = keep("drug ingredients", drug_ingredients(tables, kb, lookup))
    # not materialised: the 10-20 M exposure rows stream into the era windows
    ex = exposures(tables, kb, drug_map, eligible)
    session_key = ingredient_keys(kb)[SESSION_DRUG]
    era = keep("drug eras", eras(ex.filter(ex.ingredient_key != session_key), lookup, kb))
    drug_sessions = ex.filter(ex.ingredient_key == session_key).select(
        "person_id", step_date=ex.exposure_start, modality=ibis.literal(SESSION_DRUG)
    )
    procs = procedure_records(tables, kb).semi_join(eligible, "person_id")
    sessions = keep("treatment sessions", procs.union(drug_sessions).distinct())
    st = keep("treatment steps", steps(era, eps, sessions, kb))
    ei = keep("episode index", episode_index(st))
    cand = keep("candidates", candidates(first_index(ei), tables, kb))
    phq = phq9_records(tables, kb).semi_join(cand, "person_id")
    counts = keep("attrition counts", attrition_counts(tables, mdd_persons, excluded, ei, cand, kb))
    return PhenotypeResult(
        cohort=cohort_table(cand, kb),
        features=features(cand, eps, st, sessions, psychotic, phq, kb),
        attrition=attrition_table(counts, kb),
        episodes=eps,
        exposures=readable(ex, lookup),
        eras=era,
        steps=st,
        episode_index=ei,
        candidates=cand,
    )
