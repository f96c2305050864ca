"""Every fact marked verified says where it was checked (issue 13): the source's address and the
section or table, in ``checked_against`` (drug codes: ``rxnorm_checked_against``,
``atc_checked_against``). Walks the loaded knowledge as plain data, independently of
:mod:`trdnav.knowledge.stats`."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel


def _missing(node: Any, path: str) -> list[str]:
    """Paths of verified facts under ``node`` whose checked_against is empty."""
    out: list[str] = []
    if isinstance(node, dict):
        if node.get("verified") is True and not str(node.get("checked_against") or "").strip():
            out.append(path)
        for code in ("rxnorm", "atc"):
            done = node.get(f"{code}_verified") is True and node.get(code) is not None
            if done and not str(node.get(f"{code}_checked_against") or "").strip():
                out.append(f"{path}.{code}")
        for key, child in node.items():
            out += _missing(child, f"{path}.{key}")
    elif isinstance(node, list | tuple):
        for i, child in enumerate(node):
            out += _missing(child, f"{path}[{i}]")
    return out


def test_every_verified_fact_says_where_it_was_checked(kb):
    missing: list[str] = []
    for f in dataclasses.fields(kb):
        if f.name.startswith("_"):
            continue
        value = getattr(kb, f.name)
        data = (
            value.model_dump()
            if isinstance(value, BaseModel)
            else {k: v.model_dump() for k, v in value.items()}
        )
        missing += _missing(data, f.name)
    shown = "\n".join(missing[:40]) + ("\n…" if len(missing) > 40 else "")
    assert not missing, (
        f"{len(missing)} verified facts have no checked_against "
        f"(the source's address and section):\n{shown}"
    )
