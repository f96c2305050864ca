"""The JSON API's answers, built from what the store and the core already computed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from trdnav.core.assessment import Assessment
from trdnav.core.history import History
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records, repository
from trdnav.web.api_models import (
    AcknowledgementOut,
    AlertOut,
    ChangeOut,
    DueItemOut,
    PatientRowOut,
    SummaryOut,
)
from trdnav.web.routes.patients import acknowledgements, list_slice


def acknowledgement_out(ack: dict[str, Any] | None) -> AcknowledgementOut | None:
    """Who acknowledged and when, always in UTC (SQLite gives back naive datetimes)."""
    if ack is None:
        return None
    at: datetime = ack["at"]
    return AcknowledgementOut(by=ack["by"], at=at if at.tzinfo else at.replace(tzinfo=UTC))


def alerts_out(db: Session, patient_id: str, a: Assessment) -> list[AlertOut]:
    """The assessment's alerts in its order (suicide-risk first), with keys and acknowledgements."""
    row_id = records.patient_row_id(db, patient_id)
    acks = acknowledgements(db, [row_id])[row_id] if row_id is not None else {}
    out = []
    for alert in a.alerts:
        key = records.alert_key(alert)
        out.append(
            AlertOut(key=key, alert=alert, acknowledgement=acknowledgement_out(acks.get(key)))
        )
    return out


def due_out(items: list[dict[str, str]]) -> list[DueItemOut]:
    """Measures due, from the summary's ``due_items`` (``due_on`` is ``""`` when undated)."""
    return [
        DueItemOut(label=d["label"], status=d["status"], due_on=d["due_on"] or None) for d in items
    ]


def change_out(
    db: Session, history: History, kb: Knowledge, today: date, item: str | None = None
) -> ChangeOut:
    """After a change: the record's new version and the list columns of its new assessment."""
    patient_id = history.patient.id
    a = records.assess_as_of(history, kb, today)
    s = records.summary_values(a)
    summary = SummaryOut(
        as_of=s["as_of"],
        trd_status=s["trd_status"],
        failed_trials=s["failed_trials"],
        stage_label=s["stage_label"],
        last_phq9=s["last_phq9"],
        last_phq9_date=s["last_phq9_date"],
        suicide_risk=s["suicide_risk"],
        alerts=alerts_out(db, patient_id, a),
        next_due=s["next_due"],
        due_items=due_out(s["due_items"]),
    )
    version = repository.patient_version(db, patient_id) or 0
    return ChangeOut(patient_id=patient_id, version=version, item=item, summary=summary)


def row_out(row: dict[str, Any]) -> PatientRowOut:
    """One row of ``patient_rows`` (the page's list); a patient without a summary has nulls."""
    s = row["summary"]
    return PatientRowOut(
        id=row["id"],
        as_of=s.as_of if s else None,
        trd_status=s.trd_status if s else None,
        failed_trials=s.failed_trials if s else None,
        stage_label=s.stage_label if s else None,
        last_phq9=s.last_phq9 if s else None,
        last_phq9_date=s.last_phq9_date if s else None,
        phq9_trend=list(s.phq9_trend or []) if s else [],
        open_alerts=row["open_alerts"],
        suicide_risk=bool(s.suicide_risk) if s else False,
        suicide_risk_open=row["suicide_open"],
        overdue=due_out(row["overdue"]),
    )


def list_rows(
    db: Session, today: date, q: str, show: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """``limit`` rows of the patient list from ``offset``, in the page's order."""
    return list_slice(db, today, q, show, limit, offset)
