"""Hypothesis strategies that mutate decoded YAML/JSON documents: hostile values at random paths."""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from typing import Any

import yaml
from hypothesis import strategies as st

FAR_DATES = ("9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01", "2024-02-30", "10000-01-01")

nasty_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from([10**30, -1, 0, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "ünïcødé ✓ 🧠", "‮rtl", "a" * 10_000, "null", "~"]),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.sampled_from(FAR_DATES),
)
nasty_values = st.recursive(
    nasty_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def same_type(value: Any) -> st.SearchStrategy[Any]:
    """A hostile value of the same JSON type: a far date for a date, a huge number for a number."""
    if isinstance(value, date) or (isinstance(value, str) and _DATE.match(value)):
        far = st.sampled_from(["9999-12-31", "0001-01-01", "1900-01-01", "2199-12-31"])
        if isinstance(value, date):
            return far.map(date.fromisoformat)
        return far.map(lambda d: d + value[10:])  # keeps a time part: 9999-12-31T10:00:00Z
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int | float):
        return st.sampled_from([0, -1, 10**9, -(10**9), 10**18, 1e308, 1e-308, 0.5])
    if isinstance(value, str):
        return st.sampled_from(["", "x" * 5000, "ünïcødé ✓ 🧠", "<script>", "0", "-1"])
    return nasty_values


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into ``doc``, the root included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        doc = doc[part]
    return doc


@st.composite
def mutated(draw: st.DrawFn, docs: list[Any], max_mutations: int = 3) -> Any:
    """One of ``docs``, deep-copied, with 1..``max_mutations`` mutations at random paths."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, max_mutations))):
        targets = [p for p in paths(doc) if p]
        if not targets:
            return draw(nasty_values)
        path = draw(st.sampled_from(targets))
        parent, key = _parent(doc, path), path[-1]
        kind = draw(
            st.sampled_from(
                ["same_type", "replace", "delete", "add_key", "repeat", "as_text", "wrap"]
            )
        )
        if kind == "same_type":  # stays valid for the schema, so it reaches the mapping code
            parent[key] = draw(same_type(parent[key]))
        elif kind == "replace":
            parent[key] = draw(nasty_values)
        elif kind == "delete":
            del parent[key]
        elif kind == "add_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(nasty_values)
        elif kind == "repeat" and isinstance(parent, list):
            parent.extend([parent[key]] * draw(st.integers(1, 50)))
        elif kind == "as_text":
            parent[key] = str(parent[key])
        else:
            parent[key] = [parent[key]] if draw(st.booleans()) else {"value": parent[key]}
    return doc


def as_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def as_json(doc: Any) -> str:
    return json.dumps(doc, default=str, ensure_ascii=False)


@st.composite
def mangled_text(draw: st.DrawFn, texts: list[str]) -> str:
    """A text with random slices deleted, duplicated or replaced (syntax errors, duplicate keys)."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 80)))
        kind = draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            junk = draw(
                st.sampled_from(
                    [
                        "&a ",
                        "*a",
                        "[",
                        "{",
                        "\t",
                        ": ",
                        "- ",
                        "!!python/name:os.system",
                        "<<: *a",
                        "\n  ",
                        "9999-12-31",
                        "'",
                    ]
                )
            )
            text = text[:i] + junk + text[i:]
    return text


def alias_bomb(levels: int, width: int = 10) -> str:
    """A "billion laughs": ``width ** levels`` values from a few hundred bytes."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]")
    return "\n".join(lines) + "\n"
