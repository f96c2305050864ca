"""Small portable expression helpers shared by the phenotype modules."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def count_true(condition: ir.BooleanValue) -> ir.IntegerScalar:
    """How many rows satisfy ``condition`` (null counts as false). PostgreSQL cannot cast a
    boolean to bigint, so this sums a CASE instead of a cast."""
    return ibis.ifelse(condition, 1, 0).cast("int64").sum()
