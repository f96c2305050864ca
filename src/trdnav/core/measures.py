"""The history's measurements, resolved to their instruments and scored.

``score_measurements`` is the one place the rest of the code gets scores from: trajectories, the
safety net, the schedule, the charts and the reports all read its :class:`ScoredMeasurement` rows,
sorted by date (then by input position), so the order of rows in a file never matters.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from trdnav.core.history import History, Measurement
from trdnav.core.scoring import Score, ScoringError, score_answers
from trdnav.errors import Problem
from trdnav.knowledge.load import Knowledge


class ScoredMeasurement(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int  # position in history.measurements
    date: date
    instrument: str  # canonical name, e.g. "PHQ-9"
    instrument_id: str
    score: Score


def _sex(history: History) -> str | None:
    sex = history.patient.sex.value
    return sex if sex in ("male", "female") else None


@lru_cache(maxsize=65536)
def _score(
    kb: Knowledge,
    instrument_id: str,
    items: tuple[int | None, ...] | None,
    total: float | None,
    sex: str | None,
) -> Score | ScoringError:
    """Scoring is pure, and the same answers recur (checks, then assessment): memoised."""
    try:
        return score_answers(kb.instruments[instrument_id], items, total=total, sex=sex)
    except ScoringError as exc:
        return exc


def measurement_problems(
    loc: str, m: Measurement, history: History, kb: Knowledge
) -> list[Problem]:
    """Unknown instrument (with the closest names) or answers its rules refuse."""
    inst = kb.resolve_instrument(m.instrument)
    if inst is None:
        near = kb.closest_instrument_names(m.instrument)
        hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
        return [
            Problem(
                f"{loc}.instrument",
                "unknown_instrument",
                f"unknown instrument {m.instrument!r}{hint} (`trdnav instruments` lists them)",
            )
        ]
    if m.items is None and m.total is None:
        return []  # reported by the history checks
    result = _score(kb, inst.id, m.items, m.total, _sex(history))
    if isinstance(result, ScoringError):
        return [Problem(f"{loc}.{p.loc}", "invalid_answers", p.message) for p in result.problems]
    return []


def score_measurements(history: History, kb: Knowledge) -> list[ScoredMeasurement]:
    """Score every valid measurement; invalid ones were refused by the checks before this."""
    out: list[ScoredMeasurement] = []
    for i, m in enumerate(history.measurements):
        inst = kb.resolve_instrument(m.instrument)
        if inst is None or (m.items is None and m.total is None):
            continue
        score = _score(kb, inst.id, m.items, m.total, _sex(history))
        if isinstance(score, ScoringError):
            continue
        out.append(  # every field already validated
            ScoredMeasurement.model_construct(
                index=i, date=m.date, instrument=inst.name, instrument_id=inst.id, score=score
            )
        )
    out.sort(key=lambda s: (s.date, s.instrument, s.index))
    return out
