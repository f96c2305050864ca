"""Which instruments are due for a patient, and which are overdue.

The rules are data (``measurement.yaml: schedule``): each says which instrument, how often and in
which situation — acute treatment, an ongoing interventional course, or after a suicide-risk
signal. Pure: ``as_of`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.date_range import add_days
from trdnav.core.history import Ect, Esketamine, History, Ketamine, Medication, Rtms, Treatment
from trdnav.core.measures import ScoredMeasurement
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import ScheduleRule

Status = Literal["overdue", "due", "scheduled", "every_session"]
_INTERVENTIONAL = (Esketamine, Ketamine, Rtms, Ect)


class DueItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    instrument: str  # canonical name
    label: str
    status: Status
    due_on: date | None
    last_done: date | None
    reason: str
    citations: tuple[str, ...]
    verified: bool


def _ongoing(t: Treatment, as_of: date) -> bool:
    return t.start <= as_of and (t.stop is None or t.stop >= as_of)


def _last_change(t: Treatment) -> date:
    if isinstance(t, Medication) and t.doses:
        return max(t.start, *(d.from_ for d in t.doses))
    return t.start


def _status(due_on: date, as_of: date) -> Status:
    if due_on < as_of:
        return "overdue"
    return "due" if due_on == as_of else "scheduled"


def _last(scored: Sequence[ScoredMeasurement], instrument_id: str, since: date) -> date | None:
    dates = [s.date for s in scored if s.instrument_id == instrument_id and s.date >= since]
    return max(dates, default=None)


def _item(rule: ScheduleRule, kb: Knowledge, **fields: object) -> DueItem:
    return DueItem(
        rule=rule.id,
        instrument=kb.instruments[rule.instrument].name,
        label=rule.label,
        citations=tuple(rule.source),
        verified=rule.verified,
        **fields,
    )


def measurement_schedule(
    history: History, scored: Sequence[ScoredMeasurement], kb: Knowledge, as_of: date
) -> list[DueItem]:
    out: list[DueItem] = []
    for rule in kb.measurement.schedule:
        if rule.when == "acute_treatment":
            weeks = rule.acute_weeks or 0
            acute = [
                t
                for t in history.treatments
                if _ongoing(t, as_of) and (as_of - _last_change(t)).days < weeks * 7
            ]
            if not acute:
                continue
            since = min(_last_change(t) for t in acute)
            last = _last(scored, rule.instrument, since)
            due_on = add_days(last or since, rule.every_days)
            names = ", ".join(sorted({getattr(t, "drug", t.type) for t in acute}))
            out.append(
                _item(
                    rule,
                    kb,
                    status=_status(due_on, as_of),
                    due_on=due_on,
                    last_done=last,
                    reason=f"acute treatment since {since.isoformat()} ({names})",
                )
            )
        elif rule.when == "interventional_course":
            courses = [
                t
                for t in history.treatments
                if isinstance(t, _INTERVENTIONAL) and _ongoing(t, as_of)
            ]
            if not courses:
                continue
            since = min(t.start for t in courses)
            out.append(
                _item(
                    rule,
                    kb,
                    status="every_session",
                    due_on=None,
                    last_done=_last(scored, rule.instrument, since),
                    reason="ongoing " + ", ".join(sorted({t.type for t in courses})) + " course",
                )
            )
        else:  # after_suicide_signal
            signals = [s for s in scored if s.score.suicide_signal]
            signal_dates = [s.date for s in signals] + [a.date for a in history.clinician_alerts]
            if not signal_dates:
                continue
            latest = max(signal_dates)
            last = _last(scored, rule.instrument, latest)
            if last is not None:
                continue  # the structured assessment was done on or after the latest signal
            due_on = add_days(latest, rule.every_days - 1)
            out.append(
                _item(
                    rule,
                    kb,
                    status=_status(due_on, as_of),
                    due_on=due_on,
                    last_done=None,
                    reason=f"suicide-risk signal on {latest.isoformat()} not yet followed by a "
                    f"{kb.instruments[rule.instrument].name}",
                )
            )
    order = {"overdue": 0, "due": 1, "every_session": 2, "scheduled": 3}
    out.sort(key=lambda d: (order[d.status], d.due_on or date.max, d.rule))
    return out
