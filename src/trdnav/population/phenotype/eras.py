"""Ingredient eras and their adequacy (docs/population.md, rules 6 and 7)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge


def eras(exposures: ir.Table, lookup: ir.Table, kb: Knowledge) -> ir.Table:
    """Exposures strung into eras per person and ingredient, each judged for adequacy.

    ``exposures``: :func:`~trdnav.population.phenotype.exposures.exposures` (session drugs
    removed); ``lookup``: :func:`~trdnav.population.concepts.ingredient_table`.

    An exposure joins the era when it starts no more than ``era_persistence_days`` after the
    running end (the largest end so far); a gaps-and-islands window, no self-join. The adequate-dose
    start is the start of the first exposure at or above the ingredient's minimum dose, or the era
    start when the era has no known dose (or the ingredient no minimum in mg) and
    ``unknown_dose_is_adequate``. Adequacy date = adequate-dose start + 7 x
    ``min_weeks_at_adequate_dose`` - 1; adequate when the era lasts to that day.

    Columns: ``person_id, ingredient, era_id, kind, drug_class, era_start, era_end, era_dose,
    adequate_dose_start, adequacy_date`` (null when not adequate), ``dose_unknown``.
    """
    params = kb.population.parameters
    persistence = params.era_persistence_days.value
    adequate_days = 7 * params.min_weeks_at_adequate_dose.value - 1
    unknown_ok = params.unknown_dose_is_adequate.value

    ex = exposures.join(lookup.select("ingredient_key", "min_dose"), "ingredient_key")
    order = [ex.exposure_start, ex.exposure_end]
    before = ibis.window(
        group_by=[ex.person_id, ex.ingredient_key], order_by=order, rows=(None, -1)
    )
    running_end = ex.exposure_end.max().over(before)
    new = ibis.ifelse(
        running_end.isnull() | (ex.exposure_start.delta(running_end, unit="day") > persistence),
        1,
        0,
    )
    flagged = ex.mutate(new_era=new)
    upto = ibis.window(
        group_by=[flagged.person_id, flagged.ingredient_key],
        order_by=[flagged.exposure_start, flagged.exposure_end],
        rows=(None, 0),
    )
    numbered = flagged.mutate(era_id=flagged.new_era.sum().over(upto).cast("int64"))
    at_dose = numbered.daily_dose >= numbered.min_dose
    era = numbered.group_by("person_id", "ingredient_key", "era_id").aggregate(
        min_dose=numbered.min_dose.max(),
        era_start=numbered.exposure_start.min(),
        era_end=numbered.exposure_end.max(),
        era_dose=numbered.daily_dose.max(),
        dosed_start=ibis.ifelse(at_dose, numbered.exposure_start, ibis.null("date")).min(),
    )
    unknown = era.era_dose.isnull() | era.min_dose.isnull()
    adequate_start = ibis.cases(
        (era.dosed_start.notnull(), era.dosed_start),
        (unknown & ibis.literal(unknown_ok), era.era_start),
        else_=ibis.null("date"),
    )
    era = era.mutate(
        adequate_dose_start=adequate_start,
        dose_unknown=era.dosed_start.isnull() & unknown,
    )
    target = era.adequate_dose_start + ibis.interval(days=adequate_days)
    adequacy = ibis.ifelse(era.era_end >= target, target, ibis.null("date"))
    era = era.mutate(adequacy_date=adequacy)
    era = era.join(
        lookup.select("ingredient_key", "ingredient", "kind", "drug_class"), "ingredient_key"
    )
    return era.select(
        "person_id",
        "ingredient",
        "era_id",
        "kind",
        "drug_class",
        "era_start",
        "era_end",
        "era_dose",
        "adequate_dose_start",
        "adequacy_date",
        "dose_unknown",
    )
