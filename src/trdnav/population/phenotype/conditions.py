"""Diagnoses, exclusions and depressive episodes (docs/population.md, rules 1-3)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.population.concepts import concept_set_members, source_value_match
from trdnav.population.phenotype.util import observation_end_holding
from trdnav.population.schema import OmopTables

DIAGNOSIS_SETS = ("mdd", "mdd_psychotic")
EXCLUSION_SETS = ("bipolar", "schizophrenia_spectrum")


def diagnosis_records(tables: OmopTables, kb: Knowledge, set_ids: tuple[str, ...]) -> ir.Table:
    """``(person_id, condition_date, set_id)``, distinct, for every condition record in a set.

    A record is in a set when its ``condition_concept_id`` or ``condition_source_concept_id`` is
    a resolved member, or its source value matches the set's ICD-10-CM codes (rule 1).
    """
    sets = [kb.population.concept_set(s) for s in set_ids]
    members = concept_set_members(tables, sets)
    co = tables.condition_occurrence
    co = co.select(
        person_id=co.person_id.cast("int64"),
        condition_date=co.condition_start_date.cast("date"),
        concept_id=co.condition_concept_id.cast("int64"),
        source_concept_id=co.condition_source_concept_id.cast("int64"),
        source_value=co.condition_source_value,
    )
    by_concept = co.join(members, co.concept_id == members.concept_id).select(
        "person_id", "condition_date", "set_id"
    )
    by_source = co.join(members, co.source_concept_id == members.concept_id).select(
        "person_id", "condition_date", "set_id"
    )
    parts = [by_concept, by_source]
    for cset in sets:
        hit = co.filter(source_value_match(co.source_value, cset))
        parts.append(hit.select("person_id", "condition_date", set_id=ibis.literal(cset.id)))
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)
    return out.distinct()


def excluded_persons(tables: OmopTables, kb: Knowledge) -> ir.Table:
    """``(person_id)`` of everyone with a bipolar- or schizophrenia-spectrum record (rule 2)."""
    return diagnosis_records(tables, kb, EXCLUSION_SETS).select("person_id").distinct()


def episodes(mdd: ir.Table, tables: OmopTables, kb: Knowledge) -> ir.Table:
    """Depressive episodes from MDD diagnosis dates (rule 3).

    ``mdd``: ``(person_id, condition_date)`` of the MDD records. Returns ``(person_id,
    episode_id, episode_start, last_diagnosis, episode_end)``: a new episode when a diagnosis
    follows the previous one by more than ``episode_gap_days``; the end is the last diagnosis
    plus that gap, cut at the end of the observation period holding the last diagnosis.
    """
    gap = kb.population.parameters.episode_gap_days.value
    dates = mdd.select("person_id", "condition_date").distinct()
    w = ibis.window(group_by=dates.person_id, order_by=dates.condition_date)
    prev = dates.condition_date.lag().over(w)
    new = ibis.ifelse(prev.isnull() | (dates.condition_date.delta(prev, unit="day") > gap), 1, 0)
    flagged = dates.mutate(new_episode=new)
    cw = ibis.window(group_by=flagged.person_id, order_by=flagged.condition_date, rows=(None, 0))
    numbered = flagged.mutate(episode_id=flagged.new_episode.sum().over(cw))
    ep = numbered.group_by("person_id", "episode_id").aggregate(
        episode_start=numbered.condition_date.min(), last_diagnosis=numbered.condition_date.max()
    )
    cut = observation_end_holding(
        ep, "last_diagnosis", ["person_id", "episode_id", "episode_start"], tables
    )
    full = cut.last_diagnosis + ibis.interval(days=gap)
    end = ibis.ifelse(cut.op_end.notnull() & (cut.op_end < full), cut.op_end, full)
    return cut.select(
        "person_id",
        episode_id=cut.episode_id.cast("int64"),
        episode_start=cut.episode_start,
        last_diagnosis=cut.last_diagnosis,
        episode_end=end,
    )
