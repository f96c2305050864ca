"""Index date, the cohort table and attrition (docs/population.md, rules 10 and 11)."""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.population.phenotype.util import count_true, observation_end_holding
from trdnav.population.schema import OmopTables


def episode_index(steps: ir.Table) -> ir.Table:
    """Per episode with steps: counts and the index date (rule 10).

    With F the ``min_failed_trials``-th failed adequate trial, the index date is the first step
    start after F's adequacy date. Columns: ``person_id, episode_id, antidepressant_steps,
    adequate_trials, failed_trials, index_date`` (null when the episode has none).
    """
    s = steps
    f_date = ibis.ifelse(s.is_index_trial, s.adequacy_date, ibis.null("date")).max()
    per = s.group_by("person_id", "episode_id").aggregate(
        antidepressant_steps=count_true(s.step_kind == "antidepressant"),
        adequate_trials=count_true(s.is_trial & s.adequacy_date.notnull()),
        failed_trials=count_true(s.failed),
        f_date=f_date,
    )
    j = s.join(per.select("person_id", "episode_id", "f_date"), ["person_id", "episode_id"])
    later = ibis.ifelse(j.step_start > j.f_date, j.step_start, ibis.null("date"))
    idx = j.group_by("person_id", "episode_id").aggregate(index_date=later.min())
    return per.join(idx, ["person_id", "episode_id"]).select(
        "person_id",
        "episode_id",
        "antidepressant_steps",
        "adequate_trials",
        "failed_trials",
        "index_date",
    )


def age_at(person: ir.Table, on: ir.DateValue) -> ir.IntegerValue:
    """Whole years of age on ``on``; no month of birth means 1 July, no day the 1st."""
    cols = person.columns
    month = person.month_of_birth.cast("int64") if "month_of_birth" in cols else None
    day = person.day_of_birth.cast("int64") if "day_of_birth" in cols else None
    m = ibis.coalesce(month, 7) if month is not None else ibis.literal(7)
    if day is None:
        dd = ibis.literal(1)
    elif month is None:
        dd = ibis.literal(1)
    else:
        dd = ibis.ifelse(month.isnull(), 1, ibis.coalesce(day, 1))
    years = on.year() - person.year_of_birth.cast("int64")
    before_birthday = (on.month() < m) | ((on.month() == m) & (on.day() < dd))
    return years - ibis.ifelse(before_birthday, 1, 0)


def first_index(episode_index: ir.Table) -> ir.Table:
    """Each person's earliest index date over episodes (ties: the lower episode id)."""
    e = episode_index.filter(episode_index.index_date.notnull())
    w = ibis.window(group_by=e.person_id, order_by=[e.index_date, e.episode_id])
    ranked = e.mutate(rank=ibis.row_number().over(w))
    return ranked.filter(ranked.rank == 0).select("person_id", "episode_id", "index_date")


def candidates(first: ir.Table, tables: OmopTables, kb: Knowledge) -> ir.Table:
    """The first index of each person with its observation period end and age (rule 11).

    Columns: ``person_id, episode_id, index_date, op_end`` (null when the index is in no
    observation period), ``age``, ``in_cohort``.
    """
    min_age = kb.population.parameters.min_age_at_index.value
    held = observation_end_holding(first, "index_date", ["person_id", "episode_id"], tables)
    person = tables.person
    cols = [c for c in ("month_of_birth", "day_of_birth") if c in person.columns]
    person = person.select(
        *cols, person_id=person.person_id.cast("int64"), year_of_birth=person.year_of_birth
    )
    p = held.left_join(person, "person_id")
    age = age_at(p, p.index_date)
    out = p.select(
        person_id=p.person_id,
        episode_id=p.episode_id,
        index_date=p.index_date,
        op_end=p.op_end,
        age=age,
    )
    return out.mutate(in_cohort=(out.op_end.notnull() & (out.age >= min_age)).fill_null(False))


def cohort_table(candidates: ir.Table, kb: Knowledge) -> ir.Table:
    """The OMOP cohort table layout: one row per person in the cohort."""
    c = candidates.filter(candidates.in_cohort)
    return c.select(
        cohort_definition_id=ibis.literal(kb.population.parameters.cohort_definition_id.value).cast(
            "int64"
        ),
        subject_id=c.person_id,
        cohort_start_date=c.index_date,
        cohort_end_date=c.op_end,
    )


@dataclass(frozen=True)
class Criterion:
    """One attrition row: a stable id and the text OHDSI-style reports print."""

    step: int
    criterion_id: str
    criterion: str


def criteria(kb: Knowledge) -> list[Criterion]:
    p = kb.population.parameters
    n = p.min_failed_trials.value
    texts = [
        ("persons", "persons in the person table"),
        ("mdd_diagnosis", "with a major depressive disorder diagnosis"),
        ("no_exclusion", "without a bipolar or schizophrenia-spectrum diagnosis"),
        ("antidepressant_era", "with an antidepressant era in a depressive episode"),
        ("adequate_trial", "with an adequate trial"),
        ("adequate_trials", f"with {n} adequate trials in one episode"),
        ("failed_trials", f"with {n} failed adequate trials in one episode"),
        ("index_date", "with a following treatment step (index date)"),
        ("in_observation", "index date inside an observation period"),
        ("adult", f"aged {p.min_age_at_index.value} or over at index (the cohort)"),
    ]
    return [Criterion(i + 1, cid, text) for i, (cid, text) in enumerate(texts)]


def attrition_counts(
    tables: OmopTables,
    mdd_persons: ir.Table,
    excluded: ir.Table,
    episode_index: ir.Table,
    candidates: ir.Table,
    kb: Knowledge,
) -> ir.Table:
    """One row: ``c1`` ... ``c10``, the persons remaining after each criterion (nested)."""
    n = kb.population.parameters.min_failed_trials.value
    person = tables.person.select(person_id=tables.person.person_id.cast("int64")).distinct()
    ei = episode_index
    per = ei.group_by("person_id").aggregate(
        ad=(ei.antidepressant_steps > 0).any(),
        adequate=(ei.adequate_trials > 0).any(),
        adequate_n=(ei.adequate_trials >= n).any(),
        failed_n=(ei.failed_trials >= n).any(),
        indexed=ei.index_date.notnull().any(),
    )
    flags = (
        person.left_join(mdd_persons.mutate(mdd=ibis.literal(True)), "person_id")
        .select("person_id", "mdd")
        .left_join(excluded.mutate(excl=ibis.literal(True)), "person_id")
        .select("person_id", "mdd", "excl")
        .left_join(per, "person_id")
        .drop("person_id_right")
        .left_join(
            candidates.select("person_id", in_op=candidates.op_end.notnull(), ok="in_cohort"),
            "person_id",
        )
        .drop("person_id_right")
    )
    steps = [
        flags.mdd.fill_null(False),
        ~flags.excl.fill_null(False),
        flags.ad.fill_null(False),
        flags.adequate.fill_null(False),
        flags.adequate_n.fill_null(False),
        flags.failed_n.fill_null(False),
        flags.indexed.fill_null(False),
        flags.in_op.fill_null(False),
        flags.ok.fill_null(False),
    ]
    aggs: dict[str, ir.Value] = {"c1": flags.count()}
    cond = ibis.literal(True)
    for i, step in enumerate(steps, start=2):
        cond = cond & step
        aggs[f"c{i}"] = count_true(cond)
    return flags.aggregate(**aggs)


def attrition_table(counts: ir.Table, kb: Knowledge) -> ir.Table:
    """:func:`attrition_counts` as rows: ``step, criterion_id, criterion, persons``."""
    rows = []
    for c in criteria(kb):
        rows.append(
            counts.select(
                step=ibis.literal(c.step).cast("int64"),
                criterion_id=ibis.literal(c.criterion_id),
                criterion=ibis.literal(c.criterion),
                persons=counts[f"c{c.step}"].fill_null(0).cast("int64"),
            )
        )
    out = rows[0]
    for r in rows[1:]:
        out = out.union(r)
    return out.order_by("step")
