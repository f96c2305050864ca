"""The OMOP CDM v5.4 tables and columns the phenotype reads, and the check that they are there.

:func:`check_tables` compares what a connection holds with :data:`REQUIRED` (and
:data:`OPTIONAL`) and returns one :class:`~trdnav.errors.Problem` per missing table, missing
column or column of the wrong type family, so that the CLI can say exactly what is wrong before
any query runs. :func:`omop_tables` then builds the :class:`OmopTables` the phenotype takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from trdnav.errors import Problem

Family = Literal["integer", "numeric", "date", "string"]

REQUIRED: Mapping[str, Mapping[str, Family]] = {
    "person": {"person_id": "integer", "year_of_birth": "integer"},
    "observation_period": {
        "person_id": "integer",
        "observation_period_start_date": "date",
        "observation_period_end_date": "date",
    },
    "condition_occurrence": {
        "person_id": "integer",
        "condition_concept_id": "integer",
        "condition_start_date": "date",
        "condition_source_concept_id": "integer",
        "condition_source_value": "string",
    },
    "drug_exposure": {
        "person_id": "integer",
        "drug_concept_id": "integer",
        "drug_exposure_start_date": "date",
        "drug_exposure_end_date": "date",
        "quantity": "numeric",
        "days_supply": "integer",
    },
    "procedure_occurrence": {
        "person_id": "integer",
        "procedure_concept_id": "integer",
        "procedure_date": "date",
        "procedure_source_concept_id": "integer",
        "procedure_source_value": "string",
    },
    "measurement": {
        "person_id": "integer",
        "measurement_concept_id": "integer",
        "measurement_date": "date",
        "value_as_number": "numeric",
    },
    "concept": {
        "concept_id": "integer",
        "concept_name": "string",
        "domain_id": "string",
        "vocabulary_id": "string",
        "concept_class_id": "string",
        "standard_concept": "string",
        "concept_code": "string",
    },
}
"""Tables and columns the phenotype cannot do without, with the type family each must have."""

OPTIONAL: Mapping[str, Mapping[str, Family]] = {
    "concept_ancestor": {"ancestor_concept_id": "integer", "descendant_concept_id": "integer"},
    "drug_strength": {
        "drug_concept_id": "integer",
        "ingredient_concept_id": "integer",
        "amount_value": "numeric",
        "amount_unit_concept_id": "integer",
    },
}
"""Tables used when present (descendants, ingredient roll-up, strengths); checked when present."""

OMOP_TABLES: tuple[str, ...] = (*REQUIRED, *OPTIONAL)
"""Every OMOP table the phenotype reads, required first."""

_ARTICLE: Mapping[Family, str] = {"integer": "an", "numeric": "a", "date": "a", "string": "a"}

_FAMILY_TEST: Mapping[Family, Callable[[dt.DataType], bool]] = {
    "integer": lambda t: t.is_integer() or (t.is_decimal() and getattr(t, "scale", 0) in (0, None)),
    "numeric": lambda t: t.is_numeric(),
    "date": lambda t: t.is_date() or t.is_timestamp(),
    "string": lambda t: t.is_string(),
}


@dataclass(frozen=True)
class OmopTables:
    """The Ibis tables the phenotype reads; optional ones are None when the database lacks them."""

    person: ir.Table
    observation_period: ir.Table
    condition_occurrence: ir.Table
    drug_exposure: ir.Table
    procedure_occurrence: ir.Table
    measurement: ir.Table
    concept: ir.Table
    concept_ancestor: ir.Table | None = None
    drug_strength: ir.Table | None = None


def _check_columns(
    name: str, schema: ibis.Schema, wanted: Mapping[str, Family], problems: list[Problem]
) -> None:
    have = {col.lower(): typ for col, typ in schema.items()}
    for column, family in wanted.items():
        typ = have.get(column)
        if typ is None:
            problems.append(
                Problem(
                    f"{name}.{column}", "missing_column", f"table {name} has no column {column}"
                )
            )
        elif not _FAMILY_TEST[family](typ):
            problems.append(
                Problem(
                    f"{name}.{column}",
                    "wrong_type",
                    f"{name}.{column} is {typ}; expected {_ARTICLE[family]} {family} column",
                )
            )


def check_tables(tables: Mapping[str, ir.Table]) -> list[Problem]:
    """Problems with ``tables`` (name -> Ibis table): missing tables or columns, wrong types.

    An empty list means the phenotype can run. Emptiness of the data is the caller's concern
    (``trdnav cohort`` reports an empty ``person`` table on its own).
    """
    problems: list[Problem] = []
    for name, columns in REQUIRED.items():
        table = tables.get(name)
        if table is None:
            problems.append(Problem(name, "missing_table", f"the OMOP table {name} is missing"))
            continue
        _check_columns(name, table.schema(), columns, problems)
    for name, columns in OPTIONAL.items():
        table = tables.get(name)
        if table is not None:
            _check_columns(name, table.schema(), columns, problems)
    return problems


def omop_tables(tables: Mapping[str, ir.Table]) -> OmopTables:
    """The :class:`OmopTables` view of ``tables``; call :func:`check_tables` first."""
    return OmopTables(
        person=tables["person"],
        observation_period=tables["observation_period"],
        condition_occurrence=tables["condition_occurrence"],
        drug_exposure=tables["drug_exposure"],
        procedure_occurrence=tables["procedure_occurrence"],
        measurement=tables["measurement"],
        concept=tables["concept"],
        concept_ancestor=tables.get("concept_ancestor"),
        drug_strength=tables.get("drug_strength"),
    )
