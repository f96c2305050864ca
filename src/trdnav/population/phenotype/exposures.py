"""Drug exposures of the followed ingredients: end date and daily dose (rules 4 and 5)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.population.schema import OmopTables


def exposures(
    tables: OmopTables, kb: Knowledge, drug_map: ir.Table, persons: ir.Table | None = None
) -> ir.Table:
    """One row per (person, drug concept, start, ingredient) of a followed ingredient.

    ``drug_map``: :func:`trdnav.population.concepts.drug_ingredients`. ``persons``: when given,
    only their exposures are read (``person_id``). Duplicate rows (same person, drug, start) count
    once; their largest end date, quantity and days supply are kept. Columns: ``person_id,
    ingredient, drug_concept_id, exposure_start, exposure_end, daily_dose`` (mg/day, null when
    unknown).
    """
    default_supply = kb.population.parameters.default_days_supply.value
    de = tables.drug_exposure
    de = de.select(
        person_id=de.person_id.cast("int64"),
        drug_concept_id=de.drug_concept_id.cast("int64"),
        start=de.drug_exposure_start_date.cast("date"),
        end_date=de.drug_exposure_end_date.cast("date"),
        quantity=de.quantity.cast("float64"),
        days_supply=de.days_supply.cast("int64"),
    )
    de = de.filter(de.start.notnull())
    if persons is not None:
        de = de.semi_join(persons, "person_id")
    de = de.join(drug_map, "drug_concept_id")
    de = de.group_by("person_id", "drug_concept_id", "start", "ingredient").aggregate(
        end_date=de.end_date.max(),
        quantity=de.quantity.max(),
        days_supply=de.days_supply.max(),
        strength_mg=de.strength_mg.max(),
    )
    supply = ibis.ifelse(de.days_supply > 0, de.days_supply, ibis.null("int64"))
    by_supply = de.start + (supply - 1).as_interval("D")
    by_default = de.start + ibis.interval(days=default_supply - 1)
    end = ibis.cases(
        (de.end_date.notnull() & (de.end_date >= de.start), de.end_date),
        (supply.notnull(), by_supply),
        else_=by_default,
    )
    known = (de.quantity > 0) & (supply > 0) & (de.strength_mg > 0)
    dose = ibis.ifelse(
        known.fill_null(False),
        de.quantity * de.strength_mg / supply.cast("float64"),
        ibis.null("float64"),
    )
    return de.select(
        "person_id",
        "ingredient",
        "drug_concept_id",
        exposure_start=de.start,
        exposure_end=end,
        daily_dose=dose,
    )
