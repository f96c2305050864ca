"""The patient list, the patient page, its chart, and acknowledging alerts.

The list and the page show the patient's identity (name, date of birth, MRN) beside the clinic
identifier; each identity shown is an audited read (:mod:`trdnav.storage.identity`). The identity
form's routes (:mod:`trdnav.web.routes.identity`) are included in this module's router.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from trdnav.core.alerts import Alert
from trdnav.core.measures import score_measurements
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.reports.chart import default_instrument, render_chart
from trdnav.storage import identity as identities
from trdnav.storage import models as m
from trdnav.storage import records
from trdnav.storage.repository import PatientNotFoundError, record_audit
from trdnav.web.deps import KnowledgeDep, Reader, SessionDep, TodayDep, Writer, client_ip
from trdnav.web.pages import render
from trdnav.web.routes import identity as identity_routes

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
FILTERS = {
    "all": "All patients",
    "alerts": "Open alerts",
    "overdue": "Measures overdue",
    "trd": "TRD",
}


def acknowledgements(db: Session, patient_row_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per patient: alert key -> (who, when) of its acknowledgement."""
    out: dict[int, dict[str, Any]] = {pid: {} for pid in patient_row_ids}
    if not patient_row_ids:
        return out
    rows = db.execute(
        select(m.AlertAcknowledgement, m.User.username)
        .join(m.User, m.User.id == m.AlertAcknowledgement.user_id)
        .where(m.AlertAcknowledgement.patient_id.in_(patient_row_ids))
        .order_by(m.AlertAcknowledgement.at)
    ).all()
    for ack, username in rows:
        out[ack.patient_id][ack.alert_key] = {"by": username, "at": ack.at}
    return out


def patient_rows(
    db: Session, today: date, search: str, show: str, page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of the list (suicide-risk and open alerts first), and the number matching;
    searched and shown with each patient's identity."""
    offset = (page - 1) * PAGE_SIZE
    return list_slice(db, today, search, show, PAGE_SIZE, offset, identity=True)


def list_slice(
    db: Session,
    today: date,
    search: str,
    show: str,
    limit: int,
    offset: int,
    *,
    identity: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """``limit`` rows of the list from ``offset``, and the number matching.

    ``search`` matches part of the clinic identifier; with ``identity`` also every word of it in
    the name, MRN, other identifiers or date of birth, and each row carries its ``identity``
    (None when none is recorded; the caller audits what it shows).
    """
    query = select(m.Patient, m.PatientSummary).outerjoin(
        m.PatientSummary, m.PatientSummary.patient_id == m.Patient.id
    )
    if identity:
        query = query.add_columns(m.PatientIdentityRow).outerjoin(
            m.PatientIdentityRow, m.PatientIdentityRow.patient_id == m.Patient.id
        )
    if search:
        by_id = m.Patient.external_id.ilike(f"%{search}%")
        by_identity = identities.search_clause(search) if identity else None
        query = query.where(by_id if by_identity is None else or_(by_id, by_identity))
    if show == "overdue":
        query = query.where(m.PatientSummary.next_due < today)
    elif show == "trd":
        query = query.where(m.PatientSummary.trd_status == "trd")
    elif show == "alerts":
        query = query.where(or_(m.PatientSummary.suicide_risk.is_(True)))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    query = query.order_by(
        m.PatientSummary.suicide_risk.desc(), m.PatientSummary.next_due, m.Patient.external_id
    )
    found: list[Any] = list(db.execute(query.limit(limit).offset(offset)).all())
    acks = acknowledgements(db, [r[0].id for r in found])
    rows = []
    for found_row in found:
        patient, summary = found_row[0], found_row[1]
        stored_identity = found_row[2] if identity else None
        keys = summary.alert_keys if summary else []
        open_keys = [k for k in keys if k not in acks[patient.id]]
        overdue = [
            d
            for d in (summary.due_items if summary else [])
            if d["status"] == "overdue" or (d["due_on"] and d["due_on"] < today.isoformat())
        ]
        rows.append(
            {
                "id": patient.external_id,
                "summary": summary,
                "open_alerts": len(open_keys),
                "suicide_open": any(k.startswith("suicide_risk|") for k in open_keys),
                "overdue": overdue,
                "identity": identities.shown_identity(stored_identity),
            }
        )
    return rows, total


@router.get("/patients")
def patient_list(
    request: Request,
    db: SessionDep,
    user: Reader,
    today: TodayDep,
    q: Annotated[str, Query(max_length=120)] = "",
    show: Annotated[str, Query(pattern="^(all|alerts|overdue|trd)$")] = "all",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    q = q.strip()
    rows, total = patient_rows(db, today, q, show, page)
    record_audit(db, user.who, "list", "patient", None, client_ip(request))
    named = [r["id"] for r in rows if r["identity"] is not None]
    identities.audit_listed(db, user.who, named, client_ip(request))
    db.commit()
    context = {
        "rows": rows,
        "total": total,
        "q": q,
        "show": show,
        "filters": FILTERS,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
    }
    template = "patients/_rows.html" if request.headers.get("hx-request") else "patients/list.html"
    return render(request, template, context, today=today)


@dataclass(frozen=True)
class AlertView:
    alert: Alert
    key: str
    ack: dict[str, Any] | None


def alerts_context(record: records.Record, db: Session, patient_row_id: int) -> dict[str, Any]:
    """What the alerts section shows: each alert with its acknowledgement, suicide risk first."""
    a = record.assessment
    acks = acknowledgements(db, [patient_row_id])[patient_row_id]
    alerts = [AlertView(x, records.alert_key(x), acks.get(records.alert_key(x))) for x in a.alerts]
    return {
        "a": a,
        "alerts": alerts,
        "suicide_alerts": [x for x in alerts if x.alert.code == "suicide_risk"],
        "other_alerts": [x for x in alerts if x.alert.code != "suicide_risk"],
    }


def page_context(
    record: records.Record,
    db: Session,
    kb: Knowledge,
    patient_row_id: int,
    identity: PatientIdentity | None = None,
) -> dict[str, Any]:
    """Everything the patient page shows, computed by the core (nothing re-derived here)."""
    from trdnav.reports.timeline import render_timeline_svg

    a = record.assessment
    scored = score_measurements(record.history, kb)
    instruments = sorted({s.instrument_id for s in scored if s.score.total is not None})
    return {
        **alerts_context(record, db, patient_row_id),
        "record": record,
        "history": record.history,
        "timeline_svg": render_timeline_svg(record.history, kb, a.assessed_on),
        "chart_instrument": default_instrument(scored),
        "instruments": [(i, kb.instruments[i].name) for i in instruments],
        "kb": kb,
        "identity": identity,
    }


@router.get("/patients/{patient_id}")
def patient_page(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    row_id = records.patient_row_id(db, patient_id)
    if row_id is None:  # pragma: no cover - load raised already
        raise PatientNotFoundError(patient_id)
    identity = identities.load_identity(db, patient_id, user=user.who, ip=client_ip(request))
    context = page_context(record, db, kb, row_id, identity)
    return render(request, "patients/page.html", context, today=today)


class ChartCache:
    """The last charts drawn, keyed by patient, record version, instrument and day."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[tuple[str, int, str, date], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: tuple[str, int, str, date]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, int, str, date], value: bytes) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_charts = ChartCache()


@router.get("/patients/{patient_id}/chart.svg")
def patient_chart(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
    instrument: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    scored = score_measurements(record.history, kb)
    inst = kb.resolve_instrument(instrument) if instrument else None
    inst_id = inst.id if inst is not None else default_instrument(scored)
    if inst_id is None:
        return Response(status_code=204)
    key = (patient_id, record.version, inst_id, today)
    svg = _charts.get(key)
    if svg is None:
        history = record.history.model_copy(update={"assessed_on": today})
        suicide = [x for x in record.assessment.alerts if x.code == "suicide_risk"]
        try:
            svg = render_chart(history, scored, suicide, kb, inst_id, "svg")
        except ValueError:
            return Response(status_code=204)
        _charts.put(key, svg)
    return Response(svg, media_type="image/svg+xml")


@router.get("/patients/{patient_id}/alerts")
def patient_alerts(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    """The alerts section alone: the patient page polls it, so a new alert shows at once."""
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    row_id = records.patient_row_id(db, patient_id) or 0
    return render(request, "patients/_alerts.html", alerts_context(record, db, row_id), today=today)


@router.post("/patients/{patient_id}/alerts/acknowledge")
def acknowledge_alert(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    alert_key: Annotated[str, Form(max_length=200)],
) -> Response:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    keys = {records.alert_key(x) for x in record.assessment.alerts}
    row_id = records.patient_row_id(db, patient_id)
    if alert_key in keys and row_id is not None:
        db.add(
            m.AlertAcknowledgement(
                patient_id=row_id,
                alert_key=alert_key,
                user_id=user.id,
                at=datetime.now(UTC),
                action="acknowledged",
            )
        )
        record_audit(db, user.who, "acknowledge_alert", "patient", patient_id, client_ip(request))
        db.commit()
    if request.headers.get("hx-request"):
        context = alerts_context(record, db, row_id or 0)
        return render(request, "patients/_alerts.html", context, today=today)
    return RedirectResponse(f"/patients/{patient_id}#alerts", status_code=303)


# the identity form's routes are served with the patient pages
router.include_router(identity_routes.router)
