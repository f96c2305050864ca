"""Course forms: submitted fields -> the course record's data, and problems -> fields.

A field's name is its path in the record's model with dots (``pre_vitals.systolic``,
``post_vitals.2.at``, ``pre_checks.no_food_2h``), so a pydantic or engine problem at that path
lands next to its field. Checkbox groups post a hidden ``no`` before the box (a box left empty is
an answered "no"); a time of day (``14:05``) in a date-time field is taken on the session's date;
rows left empty are dropped. Nothing clinical is decided here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from trdnav.errors import InputError
from trdnav.web.course_ops import normal_loc

SKIP = frozenset({"csrf_token", "version", "override_reason"})
FLAG_GROUPS = ("pre_checks", "discharge_criteria_met")
TIME_FIELDS = ("at", "dose_time", "observed_until")
ROW_KEYS = frozenset({"minutes_after_dose", "instrument"})  # pre-filled: not an entry by itself
_TIME = re.compile(r"^\d{1,2}:\d{2}$")


def _time_on(value: str, on: str) -> str:
    return f"{on}T{value}" if _TIME.match(value) and on else value


def session_data(values: Mapping[str, str]) -> dict[str, Any]:
    """The session form's fields as the data of a ``SessionRecord`` (not yet validated)."""
    on = values.get("on", "")
    out: dict[str, Any] = {}
    rows: dict[str, dict[int, dict[str, str]]] = {}
    for name, raw in values.items():
        value = raw.strip()
        if name in SKIP:
            continue
        parts = name.split(".")
        if parts[0] in FLAG_GROUPS and len(parts) == 2:
            out.setdefault(parts[0], {})[parts[1]] = value == "on"
            continue
        if not value:
            continue
        if parts[-1] in TIME_FIELDS:
            value = _time_on(value, on)
        if len(parts) == 3 and parts[1].isdigit():
            rows.setdefault(parts[0], {}).setdefault(int(parts[1]), {})[parts[2]] = value
        elif len(parts) == 2:
            out.setdefault(parts[0], {})[parts[1]] = value
        elif len(parts) == 1:
            out[name] = value
    for group, by_index in rows.items():
        kept = [r for _, r in sorted(by_index.items()) if set(r) - ROW_KEYS]
        if kept:
            out[group] = kept
    return out


def errors_of(exc: InputError) -> tuple[dict[str, str], list[str]]:
    """Problems by field name, and those no field owns (shown at the top of the form)."""
    fields: dict[str, str] = {}
    top: list[str] = []
    for p in exc.problems:
        loc = normal_loc(p.loc)
        if loc:
            fields.setdefault(loc, p.message)
        else:
            top.append(p.message)
    return fields, top
