"""Clinic records: the store and the core together, for the web app, the API and the CLI.

A record is read as a validated :class:`~trdnav.core.history.History` plus its ``version``; every
change is made to the history as data, validated by exactly the code that validates a history file
(:func:`trdnav.history_files.parse_history`, so the same field paths and messages), then saved whole
with ``expected_version`` (optimistic locking) and the patient's list summary recomputed by the core
in the same transaction. A change that fails validation, a stale version or a database error stores
nothing.

The web app assesses a record as of *today* (a parameter, never read from a clock here). An
imported history keeps its ``assessed_on`` until it is edited in the app; from then on it is a live
record (``assessed_on`` empty), whose dates are checked against today.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trdnav.core.alerts import Alert
from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.history_files import parse_history
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import repository

PHQ9 = "PHQ-9"
TREND_POINTS = 8

HistoryData = dict[str, Any]


def alert_key(alert: Alert) -> str:
    """A stable key of one alert, so its acknowledgement can be found again."""
    index = "" if alert.measurement_index is None else str(alert.measurement_index)
    return f"{alert.code}|{alert.route}|{alert.date.isoformat()}|{index}"[:200]


def assess_as_of(
    history: History, kb: Knowledge, today: date, locale: str | None = None
) -> Assessment:
    """The assessment a clinician sees today (the stored ``assessed_on`` is kept in the record)."""
    return assess(history.model_copy(update={"assessed_on": today}), kb, locale=locale)


def history_data(history: History) -> HistoryData:
    """The history as plain data in the history format (what a change edits)."""
    return history.model_dump(mode="json", by_alias=True, exclude_none=True)


def summary_values(a: Assessment) -> dict[str, Any]:
    """The list columns of one assessment."""
    tr = a.staging.get("thase_rush")
    msm = a.staging.get("maudsley")
    parts = []
    if tr is not None and tr.label:
        parts.append(f"Thase–Rush {tr.label.removeprefix('Stage ').strip()}")
    if msm is not None and msm.score is not None:
        parts.append(f"Maudsley {msm.score:g}" + (f" {msm.band}" if msm.band else ""))
    phq = a.measurements.get(PHQ9)
    totals = [p for p in phq.points if p.total is not None] if phq else []
    due = [d for d in a.schedule if d.due_on is not None]
    return {
        "as_of": a.assessed_on,
        "kb_version": a.kb_version,
        "trd_status": a.trd.status,
        "failed_trials": a.trd.failed_adequate_trials,
        "stage_label": " · ".join(parts) or None,
        "last_phq9": int(totals[-1].total) if totals and totals[-1].total is not None else None,
        "last_phq9_date": totals[-1].date if totals else None,
        "phq9_trend": [int(p.total or 0) for p in totals[-TREND_POINTS:]] or None,
        "suicide_risk": any(x.code == "suicide_risk" for x in a.alerts),
        "alert_keys": [alert_key(x) for x in a.alerts],
        "next_due": min((d.due_on for d in due if d.due_on), default=None),
        "due_items": [
            {
                "label": d.label,
                "status": str(d.status),
                "due_on": d.due_on.isoformat() if d.due_on else "",
            }
            for d in a.schedule
        ],
    }


def write_summary(session: Session, patient: m.Patient, a: Assessment) -> None:
    row = session.get(m.PatientSummary, patient.id)
    if row is None:
        row = m.PatientSummary(patient_id=patient.id)
        session.add(row)
    row.computed_at = datetime.now(UTC)
    for name, value in summary_values(a).items():
        setattr(row, name, value)


@dataclass(frozen=True)
class Record:
    history: History
    version: int
    assessment: Assessment


MemoKey = tuple[str, int, date, str | None]  # patient id, record version, today, locale


class AssessmentMemo:
    """The last assessments made, by patient, record version, day and locale.

    An assessment is a pure function of the history, the knowledge, today and the locale, so the
    patient page, its chart, its alerts polling and an acknowledgement of the same record version
    on the same day share one. A hit also requires the very history (equal) and knowledge object
    (identical) that were assessed, so a restored backup or another database with the same
    identifiers and versions is never given a stale result.
    """

    def __init__(self, size: int = 64) -> None:
        self._items: OrderedDict[MemoKey, tuple[History, Knowledge, Assessment]] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: MemoKey, history: History, kb: Knowledge) -> Assessment | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
        if item is None or item[1] is not kb or item[0] != history:
            return None
        return item[2]

    def put(self, key: MemoKey, history: History, kb: Knowledge, a: Assessment) -> None:
        with self._lock:
            self._items[key] = (history, kb, a)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_assessments = AssessmentMemo()


def assess_record(
    history: History, version: int, kb: Knowledge, today: date, locale: str | None = None
) -> Assessment:
    """:func:`assess_as_of` of a stored record version, shared with recent requests."""
    key = (history.patient.id, version, today, locale)
    a = _assessments.get(key, history, kb)
    if a is None:
        a = assess_as_of(history, kb, today, locale)
        _assessments.put(key, history, kb, a)
    return a


def load(
    session: Session,
    patient_id: str,
    kb: Knowledge,
    today: date,
    user: str,
    ip: str | None = None,
    locale: str | None = None,
) -> Record:
    """Read (audited) and assess one record; raises ``PatientNotFoundError``."""
    history, version = repository.load_record(session, patient_id, user, ip)
    return Record(history, version, assess_record(history, version, kb, today, locale))


def validate(data: HistoryData, kb: Knowledge, today: date) -> History:
    """Validate history data as a file is validated; raises ``InputError`` naming each field."""
    history = parse_history(data, kb, today)
    # parse_history fills a missing assessed_on with today; a record keeps what it was given
    if data.get("assessed_on") is None:
        history = history.model_copy(update={"assessed_on": None})
    return history


def save(
    session: Session,
    history: History,
    kb: Knowledge,
    today: date,
    user: str,
    expected_version: int | None = None,
    ip: str | None = None,
    also: Callable[[m.Patient], None] | None = None,
) -> str:
    """Save a validated history whole, with its summary, in one transaction.

    ``also`` runs inside that transaction (e.g. to mark a self-report link used), so the record,
    its summary and that change are stored together or not at all.
    """

    # assessed before the transaction: a save holds its write lock only while it writes
    a = assess_as_of(history, kb, today)

    def refresh(patient: m.Patient) -> None:
        write_summary(session, patient, a)
        # the page shown after the save reads this version back: it need not be assessed again
        _assessments.put((history.patient.id, patient.version, today, None), history, kb, a)
        if also is not None:
            also(patient)

    return repository.save_history(
        session, history, user, expected_version=expected_version, ip=ip, before_commit=refresh
    )


def change(
    session: Session,
    patient_id: str,
    edit: Callable[[HistoryData], HistoryData | None],
    kb: Knowledge,
    today: date,
    user: str,
    expected_version: int | None,
    ip: str | None = None,
    also: Callable[[m.Patient], None] | None = None,
) -> History:
    """Apply ``edit`` to the stored history's data, validate, save at ``expected_version``.

    ``expected_version=None`` skips the version check (a patient's self-report adds a
    measurement whatever the clinicians saved meanwhile): the record is then locked before it is
    read (:func:`repository.lock_record`) and saved in the same transaction, so a save made
    meanwhile by someone else is waited for and kept, never overwritten.

    ``edit`` changes the data in place (or returns new data); it is called once. Raises
    ``InputError`` (field paths of the history format), ``StaleRecordError`` or
    ``PatientNotFoundError``; nothing is stored on any error.
    """
    locked = expected_version is None
    try:
        if locked:
            repository.lock_record(session, patient_id)
        history, version = repository.load_record(session, patient_id, user, ip, commit=not locked)
        data = history_data(history)
        # an edited record is live: it is assessed, and its dates checked, as of today
        data.pop("assessed_on", None)
        data = edit(data) or data
        updated = validate(data, kb, today)
    except BaseException:
        if locked:
            session.rollback()
        raise
    expected = version if locked else expected_version
    save(session, updated, kb, today, user, expected_version=expected, ip=ip, also=also)
    return updated


def patient_row_id(session: Session, patient_id: str) -> int | None:
    return session.scalar(select(m.Patient.id).where(m.Patient.external_id == patient_id))
