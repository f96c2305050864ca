"""Treatment steps, trials and failures within episodes (docs/population.md, rules 8 and 9)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.population.concepts import (
    KIND_ANTIDEPRESSANT,
    KIND_AUGMENTATION,
    PROCEDURE_SETS,
    concept_set_members,
    source_value_match,
)
from trdnav.population.schema import OmopTables


def procedure_records(tables: OmopTables, kb: Knowledge) -> ir.Table:
    """``(person_id, step_date, modality)``, distinct: ECT, rTMS and esketamine procedures.

    A procedure is in a set by ``procedure_concept_id``, ``procedure_source_concept_id`` or its
    source value (dots removed, upper case, starting with a listed CPT-4/HCPCS code).
    """
    sets = [kb.population.concept_set(s) for s in PROCEDURE_SETS]
    members = concept_set_members(tables, sets)
    po = tables.procedure_occurrence
    po = po.select(
        person_id=po.person_id.cast("int64"),
        step_date=po.procedure_date.cast("date"),
        concept_id=po.procedure_concept_id.cast("int64"),
        source_concept_id=po.procedure_source_concept_id.cast("int64"),
        source_value=po.procedure_source_value,
    )
    parts = [
        po.join(members, po.concept_id == members.concept_id).select(
            "person_id", "step_date", modality=members.set_id
        ),
        po.join(members, po.source_concept_id == members.concept_id).select(
            "person_id", "step_date", modality=members.set_id
        ),
    ]
    for cset in sets:
        parts.append(
            po.filter(source_value_match(po.source_value, cset)).select(
                "person_id", "step_date", modality=ibis.literal(cset.id)
            )
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)
    return out.distinct()


def _in_episode(table: ir.Table, date: str, episodes: ir.Table, lookback: int) -> ir.Table:
    ep = episodes.select("person_id", "episode_id", "episode_start", "episode_end")
    return table.join(
        ep,
        [
            table.person_id == ep.person_id,
            table[date] >= ep.episode_start - ibis.interval(days=lookback),
            table[date] <= ep.episode_end,
        ],
    )


def steps(eras: ir.Table, episodes: ir.Table, sessions: ir.Table, kb: Knowledge) -> ir.Table:
    """Treatment steps per episode, with trial adequacy and failure (rules 8, 9).

    ``eras``: ingredient eras (antidepressants and augmentation agents); ``sessions``:
    ``(person_id, step_date, modality)`` of ECT, rTMS and esketamine. Columns: ``person_id,
    episode_id, step_key`` (ingredient or modality), ``step_kind`` (antidepressant, augmentation,
    ect, rtms, esketamine), ``drug_class, step_start, is_trial, adequacy_date`` (earliest of the
    ingredient's eras in the episode; null when none adequate), ``dose_unknown`` (that era was
    judged without a dose), ``failed``.
    """
    params = kb.population.parameters
    lookback = params.episode_lookback_days.value
    count_aug = params.count_augmentation_as_trial.value
    min_failed = params.min_failed_trials.value

    ad = eras.filter(eras.kind == KIND_ANTIDEPRESSANT)
    aug = eras.filter(eras.kind == KIND_AUGMENTATION)
    running = ad.select("person_id", ad_start=ad.era_start, ad_end=ad.era_end)
    aug = aug.semi_join(
        running,
        [
            aug.person_id == running.person_id,
            aug.era_start >= running.ad_start,
            aug.era_start <= running.ad_end,
        ],
    )
    counted = ad.union(aug)
    e = _in_episode(counted, "era_start", episodes, lookback)
    adequate = e.adequacy_date.notnull()
    unknown_date = ibis.ifelse(adequate & e.dose_unknown, e.adequacy_date, ibis.null("date"))
    drug_steps = e.group_by("person_id", "episode_id", step_key=e.ingredient).aggregate(
        step_kind=e.kind.max(),
        drug_class=e.drug_class.max(),
        step_start=e.era_start.min(),
        adequacy_date=e.adequacy_date.min(),
        unknown_date=unknown_date.min(),
    )
    drug_steps = drug_steps.select(
        "person_id",
        "episode_id",
        "step_key",
        "step_kind",
        "drug_class",
        "step_start",
        is_trial=(drug_steps.step_kind == KIND_ANTIDEPRESSANT)
        | ((drug_steps.step_kind == KIND_AUGMENTATION) & ibis.literal(count_aug)),
        adequacy_date=drug_steps.adequacy_date,
        dose_unknown=(drug_steps.unknown_date == drug_steps.adequacy_date).fill_null(False),
    )
    s = _in_episode(sessions, "step_date", episodes, lookback)
    session_steps = s.group_by("person_id", "episode_id", step_key=s.modality).aggregate(
        step_start=s.step_date.min()
    )
    session_steps = session_steps.select(
        "person_id",
        "episode_id",
        "step_key",
        step_kind=session_steps.step_key,
        drug_class=ibis.null("string"),
        step_start="step_start",
        is_trial=ibis.literal(False),
        adequacy_date=ibis.null("date"),
        dose_unknown=ibis.literal(False),
    )
    all_steps = drug_steps.union(session_steps)
    w = ibis.window(group_by=[all_steps.person_id, all_steps.episode_id])
    last_start = all_steps.step_start.max().over(w)
    failed = (
        all_steps.is_trial
        & all_steps.adequacy_date.notnull()
        & (last_start > all_steps.adequacy_date)
    ).fill_null(False)
    out = all_steps.mutate(failed=failed)
    # rank of each failed trial by adequacy date, then ingredient (rule 10)
    fw = ibis.window(
        group_by=[out.person_id, out.episode_id, out.failed],
        order_by=[out.adequacy_date, out.step_key],
    )
    rank = ibis.ifelse(out.failed, ibis.row_number().over(fw) + 1, ibis.null("int64"))
    out = out.mutate(failed_rank=rank.cast("int64"))
    return out.mutate(is_index_trial=(out.failed_rank == min_failed).fill_null(False))
