"""Reading treatment-history files (YAML or JSON) into validated :class:`History` models.

Everything a user can get wrong becomes a :class:`~trdnav.errors.Problem` naming the file, the field
path and what was expected; all problems of a file are reported together.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from trdnav.bounded_decode import DecodeRefused, load_json, load_yaml
from trdnav.core.checks import check_history
from trdnav.core.date_range import implausible_message, plausible
from trdnav.core.history import TREATMENT_TYPES, History
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge


def field_path(loc: tuple[int | str, ...]) -> str:
    """Pydantic's location as the path a user reads.

    ``('treatments', 2, 'medication', 'doses', 0, 'from')`` -> ``treatments[2].doses[0].from``.
    """
    out = ""
    prev: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(prev, int) and part in TREATMENT_TYPES and out.startswith("treatments"):
            pass  # the discriminator tag pydantic inserts
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field (not part of the history format)"
    if kind == "missing":
        return "required field is missing"
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"{err['msg']}{shown}"


def problems_from_validation(exc: ValidationError, file: str | None = None) -> list[Problem]:
    return [
        Problem(field_path(tuple(e["loc"])), e["type"], _message(e), file) for e in exc.errors()
    ]


def parse_history(data: Any, kb: Knowledge, today: date, file: str | None = None) -> History:
    """Validate already-decoded data; raise :class:`InputError` with every problem found."""
    if not isinstance(data, dict):
        raise InputError(
            [
                Problem(
                    "",
                    "not_a_mapping",
                    "a history must be a mapping with patient, episode, treatments",
                    file,
                )
            ]
        )
    # identity (name, MRN: `trdnav export --with-identity`) is clinic metadata, not part of the
    # clinical history: the assessment reads the history without it
    data = {k: v for k, v in data.items() if k != "identity"}
    try:
        history = History.model_validate(data)
    except ValidationError as exc:
        raise InputError(problems_from_validation(exc, file)) from None
    as_of = history.assessed_on or today
    if not plausible(as_of):  # `--today 9999-12-31`: every date check would pass, then overflow
        raise InputError(
            [
                Problem(
                    "assessed_on",
                    "date_implausible",
                    implausible_message(as_of)
                    + ("" if history.assessed_on else " (no assessed_on: the date given as today)"),
                    file,
                )
            ]
        )
    problems = [Problem(p.loc, p.code, p.message, file) for p in check_history(history, kb, as_of)]
    if problems:
        raise InputError(problems)
    if history.assessed_on is None:
        history = history.model_copy(update={"assessed_on": today})
    return history


def decode_file(path: Path) -> Any:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            [Problem("", "file_unreadable", f"cannot read file: {exc.strerror}", name)]
        ) from None
    except UnicodeDecodeError:
        raise InputError([Problem("", "file_unreadable", "not a UTF-8 text file", name)]) from None
    try:
        if path.suffix.lower() == ".json":
            return load_json(text)
        return load_yaml(text)
    except DecodeRefused as exc:
        raise InputError([Problem("", "input_refused", str(exc), name)]) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            [
                Problem(
                    "",
                    "json_invalid",
                    f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                    name,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or "invalid syntax"
        raise InputError(
            [Problem("", "yaml_invalid", f"malformed YAML{where}: {what}", name)]
        ) from None


def load_history(path: Path, kb: Knowledge, today: date) -> History:
    return parse_history(decode_file(path), kb, today, str(path))
