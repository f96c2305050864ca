"""Synthetic demo patients for `trdnav demo` and `make run` (no real person's data).

(first version: the example histories, their dates shifted so that they end today)
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from trdnav.knowledge.load import default_knowledge
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _shift(value: Any, days: int) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, days) for v in value]
    if isinstance(value, date):
        return (value + timedelta(days=days)).isoformat()
    if isinstance(value, str) and _DATE.match(value):
        return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
    return value


def demo_data(today: date) -> list[dict[str, Any]]:
    out = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        as_of = data.get("assessed_on")
        anchor = date.fromisoformat(str(as_of)) if as_of else today
        shifted = _shift(data, (today - anchor).days)
        shifted.pop("assessed_on", None)
        out.append(shifted)
    return out


def load_demo(url: str, today: date) -> int:
    kb = default_knowledge()
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            n = 0
            for data in demo_data(today):
                history = records.validate(data, kb, today)
                records.save(session, history, kb, today, "demo")
                n += 1
            return n
    finally:
        engine.dispose()
