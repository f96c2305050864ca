"""Drug exposures of the followed ingredients: end date and daily dose (rules 4 and 5)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.population.schema import OmopTables


def exposures(
    tables: OmopTables, kb: Knowledge, drug_map: ir.Table, persons: ir.Table | None = None
) -> ir.Table:
    """One row per drug_exposure row and ingredient of a followed ingredient.

    ``drug_map``: :func:`trdnav.population.concepts.drug_ingredients`. ``persons``: when given,
    only their exposures are read (``person_id``). Integer keys only: sorting and grouping
    10-20 M rows on strings is several times slower. Columns: ``person_id,
    ingredient_key, drug_concept_id, exposure_start, exposure_end, daily_dose`` (mg/day, null when
    unknown); :func:`readable` adds the ingredient's name.
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
    dm = drug_map.select("drug_concept_id", "ingredient_key", "strength_mg")
    de = de.join(dm, "drug_concept_id")
    # No de-duplication pass here (it was the costliest step at 10-20 M rows): a duplicate row
    # (same person, drug, start) has the same start and end, and an era takes the largest end
    # and the largest dose, so duplicates count once in every era without it. readable()
    # shows the distinct rows.
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
        "ingredient_key",
        "drug_concept_id",
        exposure_start=de.start,
        exposure_end=end,
        daily_dose=dose,
    )


def readable(exposures: ir.Table, lookup: ir.Table) -> ir.Table:
    """``exposures`` with the ingredient's id instead of its integer key, distinct rows."""
    out = exposures.join(lookup.select("ingredient_key", "ingredient"), "ingredient_key")
    out = out.select(
        "person_id",
        "ingredient",
        "drug_concept_id",
        "exposure_start",
        "exposure_end",
        "daily_dose",
    )
    return out.distinct()
