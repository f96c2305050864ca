"""The plausible range of every date in a history, and the overflow-safe day arithmetic.

A date outside :data:`EARLIEST`..:data:`LATEST` (a typo such as ``9999-12-31`` or ``0001-01-01``) is
refused when a history is read, naming the field. The arithmetic helpers saturate at
``date.min``/``date.max`` instead of raising ``OverflowError``, so a record stored before this check
still renders.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, timedelta

from pydantic import BaseModel

from trdnav.errors import Problem

EARLIEST = date(1900, 1, 1)  # as storage.identity.EARLIEST_BIRTH_DATE
LATEST = date(2199, 12, 31)


def plausible(d: date) -> bool:
    return EARLIEST <= d <= LATEST


def implausible_message(d: date) -> str:
    return (
        f"{d.isoformat()} is not a plausible date "
        f"(expected {EARLIEST.isoformat()} to {LATEST.isoformat()})"
    )


def _dates(value: object, loc: str) -> Iterator[tuple[str, date]]:
    if isinstance(value, date):
        yield loc, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            key = field.alias or name
            yield from _dates(getattr(value, name), f"{loc}.{key}" if loc else key)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _dates(item, f"{loc}[{i}]")


def implausible_dates(model: BaseModel) -> list[Problem]:
    """A problem for each date of ``model`` (walked field by field) outside the plausible range."""
    return [
        Problem(loc, "date_implausible", implausible_message(d))
        for loc, d in _dates(model, "")
        if not plausible(d)
    ]


def add_days(d: date, days: float) -> date:
    """``d`` plus ``days`` rounded to whole days (negative: minus), saturating at
    ``date.min``/``date.max`` (an infinite count too; a NaN count adds nothing)."""
    if math.isnan(days):
        return d
    try:
        return d + timedelta(days=round(days))
    except OverflowError:
        return date.max if days > 0 else date.min
