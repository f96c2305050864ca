"""Date arithmetic used by clinical rules (pure; "today" is always a parameter)."""

from __future__ import annotations

from datetime import date


def add_years(d: date, years: int) -> date:
    """The same calendar day ``years`` later (29 February falls back to 28 February)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def completed_months(start: date, end: date) -> int:
    """Whole calendar months from ``start`` to ``end`` (like an age in months)."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day:
        months -= 1
    return max(months, 0)
