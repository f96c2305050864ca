"""Small portable expression helpers shared by the phenotype modules."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from trdnav.population.schema import OmopTables


def count_true(condition: ir.BooleanValue) -> ir.IntegerScalar:
    """How many rows satisfy ``condition`` (null counts as false). PostgreSQL cannot cast a
    boolean to bigint, so this sums a CASE instead of a cast."""
    return ibis.ifelse(condition, 1, 0).cast("int64").sum()


def observation_end_holding(
    rows: ir.Table, date: str, keys: list[str], tables: OmopTables
) -> ir.Table:
    """``keys`` + ``date`` of ``rows`` with ``op_end``: the latest end of an observation period
    holding that date (null when none holds it)."""
    op = tables.observation_period
    op = op.select(
        op_person_id=op.person_id.cast("int64"),
        op_start=op.observation_period_start_date.cast("date"),
        op_end=op.observation_period_end_date.cast("date"),
    )
    j = rows.left_join(
        op,
        [rows.person_id == op.op_person_id, op.op_start <= rows[date], op.op_end >= rows[date]],
    )
    return j.group_by([*keys, date]).aggregate(op_end=j.op_end.max())
