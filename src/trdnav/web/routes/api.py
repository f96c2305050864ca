"""The JSON API under ``/api``: the operations of the pages, described by ``/api/openapi.json``.

Request bodies are the history format itself (``History``, a treatment, a measurement, a lab, a
pgx result, a current medication), read as JSON and validated by the code that validates history
files (:func:`trdnav.storage.records.validate` / :func:`~trdnav.storage.records.change`), so an
invalid field is reported at its path in the history (``treatments[3].doses[0].mg_per_day``)
and nothing is stored. Versions: a record's ``version`` is its ETag; replacing a record or
changing a treatment by index needs ``If-Match: "<version>"`` (428 without it, 412 when stale);
appending an item checks ``If-Match`` only when it is sent. Errors have one shape
(:class:`~trdnav.web.api_models.ErrorOut`); the HTTP mechanics are in :mod:`trdnav.web.api_http`,
the answers are built by :mod:`trdnav.web.api_answers`. docs/api.md describes it for users.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from trdnav.core.assessment import Assessment
from trdnav.core.history import (
    CurrentMedication,
    History,
    Lab,
    Measurement,
    PgxResult,
    Treatment,
)
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import records, repository
from trdnav.storage.identity import load_identity
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError, record_audit
from trdnav.web.api_answers import acknowledgement_out, alerts_out, change_out, list_rows, row_out
from trdnav.web.api_docs import api_reference
from trdnav.web.api_http import (
    ApiProblem,
    ApiRoute,
    IfMatch,
    JsonBody,
    PatientId,
    bearer_token,
    body_doc,
    etag,
    expected_version,
    session_cookie,
)
from trdnav.web.api_models import (
    AlertOut,
    AlertsOut,
    ChangeOut,
    DrugsOut,
    InstrumentsOut,
    PatientListOut,
    PatientRecordOut,
    error_responses,
)
from trdnav.web.deps import (
    CurrentUser,
    KnowledgeDep,
    Reader,
    SessionDep,
    TodayDep,
    Writer,
    client_ip,
)
from trdnav.web.pages import render
from trdnav.web.routes.patients import PAGE_SIZE, acknowledgements

MAX_LIMIT = 100
ItemEdit = Callable[[dict[str, Any]], None]

router = APIRouter(
    prefix="/api",
    route_class=ApiRoute,
    dependencies=[Depends(bearer_token), Depends(session_cookie)],
)

CHANGED = "stored: the new version (also the ETag) and the assessment summary"
READ_ERRORS = error_responses(401, 403, 404, 422)
WRITE_ERRORS = error_responses(401, 403, 404, 412, 415, 422)


@router.get(
    "/patients",
    tags=["patients"],
    summary="List patients with their summary columns",
    description="Suicide-risk first, then by the next measure due. The columns are the summary "
    "the core computed when each record was last saved; `overdue` is read against today.",
    response_model=PatientListOut,
    response_description="one page of the list",
    responses=error_responses(401, 403, 422),
)
def list_patients(
    request: Request,
    db: SessionDep,
    user: Reader,
    today: TodayDep,
    q: Annotated[str, Query(max_length=120, description="part of the patient id")] = "",
    show: Annotated[
        str, Query(pattern="^(all|alerts|overdue|trd)$", description="all, alerts, overdue, trd")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows to return")] = PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")] = 0,
) -> PatientListOut:
    rows, total = list_rows(db, today, q.strip(), show, limit, offset)
    record_audit(db, user.who, "list", "patient", None, client_ip(request))
    db.commit()
    return PatientListOut(items=[row_out(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post(
    "/patients",
    tags=["patients"],
    summary="Create a patient from a whole history",
    description="201 with `Location` and `ETag`; 409 when a patient with this id exists.",
    status_code=201,
    response_model=ChangeOut,
    response_description=CHANGED,
    responses=error_responses(401, 403, 409, 415, 422),
    openapi_extra=body_doc(History, "the whole history"),
)
def create_patient(
    request: Request,
    response: Response,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    body: JsonBody,
) -> ChangeOut:
    history = records.validate(body, kb, today)
    patient_id = history.patient.id
    try:
        records.save(db, history, kb, today, user.who, expected_version=0, ip=client_ip(request))
    except StaleRecordError:
        raise ApiProblem(
            409,
            "patient_exists",
            "a patient with this id exists already: nothing was stored "
            "(PUT /api/patients/{id} replaces a record)",
        ) from None
    out = change_out(db, history, kb, today)
    response.headers["Location"] = f"/api/patients/{quote(patient_id, safe='')}"
    response.headers["ETag"] = etag(out.version)
    return out


@router.get(
    "/patients/{patient_id}",
    tags=["patients"],
    summary="Read a patient's history and its version",
    description='The history in the history format; `version` is also the `ETag` ("3"), '
    "to send back in `If-Match` when changing the record.",
    response_model=PatientRecordOut,
    response_description="the history and its version (also the ETag)",
    response_model_exclude_none=True,
    responses=READ_ERRORS,
)
def read_patient(
    request: Request,
    response: Response,
    patient_id: PatientId,
    db: SessionDep,
    user: Reader,
    with_identity: Annotated[
        bool, Query(description="also return the patient's identity (left out by default)")
    ] = False,
) -> PatientRecordOut:
    history, version = repository.load_record(db, patient_id, user.who, client_ip(request))
    response.headers["ETag"] = etag(version)
    identity = (
        load_identity(db, patient_id, user=user.who, ip=client_ip(request))
        if with_identity
        else None
    )
    return PatientRecordOut(id=patient_id, version=version, history=history, identity=identity)


@router.put(
    "/patients/{patient_id}",
    tags=["patients"],
    summary="Replace a patient's whole history",
    description='Requires `If-Match: "<version>"` (428 without it; 412 when someone saved '
    "since). The body's `patient.id` must be the path's id.",
    response_model=ChangeOut,
    response_description=CHANGED,
    responses=error_responses(401, 403, 404, 412, 415, 422, 428),
    openapi_extra=body_doc(History, "the whole history"),
)
def replace_patient(
    request: Request,
    response: Response,
    patient_id: PatientId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    body: JsonBody,
    if_match: IfMatch = None,
) -> ChangeOut:
    expected = expected_version(if_match, required=True)
    if repository.patient_version(db, patient_id) is None:
        raise PatientNotFoundError(patient_id)
    history = records.validate(body, kb, today)
    if history.patient.id != patient_id:
        problem = Problem(
            "patient.id", "patient_id_mismatch", f"expected {patient_id!r}, the id in the URL"
        )
        raise InputError([problem])
    records.save(db, history, kb, today, user.who, expected_version=expected, ip=client_ip(request))
    out = change_out(db, history, kb, today)
    response.headers["ETag"] = etag(out.version)
    return out


@router.get(
    "/patients/{patient_id}/assessment",
    tags=["patients"],
    summary="Assess the record as of today",
    description="The full assessment, the same JSON as `trdnav assess --json`: alerts (and "
    "crisis resources) first, TRD status, trials, staging, measurements, plan, workup.",
    response_model=Assessment,
    response_description="the assessment as of today",
    responses=READ_ERRORS,
)
def read_assessment(
    request: Request,
    patient_id: PatientId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
    locale: Annotated[
        str | None, Query(max_length=16, description="crisis resources of this locale (en-US)")
    ] = None,
) -> Assessment:
    if locale is not None and locale not in kb.measurement.crisis_resources:
        known = ", ".join(sorted(kb.measurement.crisis_resources))
        problem = Problem("locale", "unknown_locale", f"expected one of {known}")
        raise InputError([problem])
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request), locale)
    return record.assessment


def _change(
    request: Request,
    response: Response,
    patient_id: str,
    db: Session,
    kb: Knowledge,
    user: CurrentUser,
    today: date,
    edit: ItemEdit,
    item: list[str],
    expected: int | None,
) -> ChangeOut:
    """Apply ``edit`` through ``records.change``; ``item`` receives the path it touched."""
    updated = records.change(
        db, patient_id, edit, kb, today, user.who, expected, client_ip(request)
    )
    out = change_out(db, updated, kb, today, item[0] if item else None)
    response.headers["ETag"] = etag(out.version)
    return out


def _add_item_route(path: str, collection: str, kind: Any, what: str, summary: str) -> None:
    """``POST /patients/{id}/<path>``: append one item of the history format."""

    def add_item(
        request: Request,
        response: Response,
        patient_id: PatientId,
        db: SessionDep,
        kb: KnowledgeDep,
        user: Writer,
        today: TodayDep,
        body: JsonBody,
        if_match: IfMatch = None,
    ) -> ChangeOut:
        expected = expected_version(if_match, required=False)
        item: list[str] = []

        def edit(data: dict[str, Any]) -> None:
            items = data.setdefault(collection, [])
            item.append(f"{collection}[{len(items)}]")
            items.append(body)

        return _change(request, response, patient_id, db, kb, user, today, edit, item, expected)

    router.add_api_route(
        f"/patients/{{patient_id}}/{path}",
        add_item,
        methods=["POST"],
        name=f"add_{collection}",
        tags=["record items"],
        summary=summary,
        description=f"Appends {what} to `{collection}`. `If-Match` is optional: with it the "
        "version is checked (412 when stale); without it the item is appended to the record "
        "as it is now. Errors name the appended item's path, e.g. "
        f"`{collection}[3]…`.",
        status_code=201,
        response_model=ChangeOut,
        response_description=CHANGED,
        responses=WRITE_ERRORS,
        openapi_extra=body_doc(kind, what),
    )


for _path, _collection, _kind, _what, _summary in (
    (
        "treatments",
        "treatments",
        Treatment,
        "a treatment (its `type` names which)",
        "Add a treatment",
    ),
    (
        "measurements",
        "measurements",
        Measurement,
        "a rating scale or screener",
        "Add a measurement",
    ),
    ("labs", "labs", Lab, "a laboratory result", "Add a lab result"),
    ("pgx", "pgx", PgxResult, "a pharmacogenomic result", "Add a pharmacogenomic result"),
    (
        "current-medications",
        "current_medications",
        CurrentMedication,
        "a drug taken now",
        "Add a current medication",
    ),
):
    _add_item_route(_path, _collection, _kind, _what, _summary)

TreatmentIndex = Annotated[int, Path(ge=0, le=10_000, description="position in `treatments`")]


def _at_index(data: dict[str, Any], index: int) -> list[Any]:
    items: list[Any] = data.setdefault("treatments", [])
    if index >= len(items):
        raise ApiProblem(
            404,
            "treatment_not_found",
            f"the record has {len(items)} treatment(s): no treatments[{index}]",
        )
    return items


@router.put(
    "/patients/{patient_id}/treatments/{index}",
    tags=["record items"],
    summary="Replace one treatment",
    description='Requires `If-Match: "<version>"`: an index only means something in the '
    "version it was read from.",
    response_model=ChangeOut,
    response_description=CHANGED,
    responses=error_responses(401, 403, 404, 412, 415, 422, 428),
    openapi_extra=body_doc(Treatment, "the treatment"),
)
def replace_treatment(
    request: Request,
    response: Response,
    patient_id: PatientId,
    index: TreatmentIndex,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    body: JsonBody,
    if_match: IfMatch = None,
) -> ChangeOut:
    expected = expected_version(if_match, required=True)

    def edit(data: dict[str, Any]) -> None:
        _at_index(data, index)[index] = body

    item = [f"treatments[{index}]"]
    return _change(request, response, patient_id, db, kb, user, today, edit, item, expected)


@router.delete(
    "/patients/{patient_id}/treatments/{index}",
    tags=["record items"],
    summary="Remove one treatment",
    description='Requires `If-Match: "<version>"`; the treatments after it move up by one.',
    response_model=ChangeOut,
    response_description=CHANGED,
    responses=error_responses(401, 403, 404, 412, 422, 428),
)
def remove_treatment(
    request: Request,
    response: Response,
    patient_id: PatientId,
    index: TreatmentIndex,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    if_match: IfMatch = None,
) -> ChangeOut:
    expected = expected_version(if_match, required=True)

    def edit(data: dict[str, Any]) -> None:
        _at_index(data, index).pop(index)

    item = [f"treatments[{index}]"]
    return _change(request, response, patient_id, db, kb, user, today, edit, item, expected)


@router.get(
    "/patients/{patient_id}/alerts",
    tags=["alerts"],
    summary="The patient's alerts as of today",
    description="Suicide-risk alerts first, each with its key and acknowledgement, and the "
    "crisis resources to show with them.",
    response_model=AlertsOut,
    response_description="the alerts, with their keys and acknowledgements",
    responses=READ_ERRORS,
)
def read_alerts(
    request: Request,
    patient_id: PatientId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> AlertsOut:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    a = record.assessment
    return AlertsOut(
        patient_id=patient_id,
        alerts=alerts_out(db, patient_id, a),
        crisis_resources=list(a.crisis_resources),
    )


@router.post(
    "/patients/{patient_id}/alerts/{alert_key}/acknowledge",
    tags=["alerts"],
    summary="Acknowledge an alert",
    description="Records who acknowledged the alert and when (audited). Acknowledging it again "
    "keeps the first acknowledgement. 404 when the record has no such alert today.",
    response_model=AlertOut,
    response_description="the alert with its acknowledgement",
    responses=READ_ERRORS,
)
def acknowledge_alert(
    request: Request,
    patient_id: PatientId,
    alert_key: Annotated[str, Path(max_length=200, description="the alert's `key`")],
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
) -> AlertOut:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    alert = next((x for x in record.assessment.alerts if records.alert_key(x) == alert_key), None)
    row_id = records.patient_row_id(db, patient_id)
    if alert is None or row_id is None:
        raise ApiProblem(404, "alert_not_found", "the record has no such alert today")
    known = acknowledgements(db, [row_id])[row_id].get(alert_key)
    if known is None:
        at = datetime.now(UTC)
        db.add(
            m.AlertAcknowledgement(
                patient_id=row_id,
                alert_key=alert_key,
                user_id=user.id,
                at=at,
                action="acknowledged",
            )
        )
        record_audit(db, user.who, "acknowledge_alert", "patient", patient_id, client_ip(request))
        db.commit()
        known = {"by": user.username, "at": at}
    return AlertOut(key=alert_key, alert=alert, acknowledgement=acknowledgement_out(known))


@router.get(
    "/instruments",
    tags=["knowledge base"],
    summary="The rating scales and screeners",
    description="Items (wording only where the licence allows), ranges, bands, rules, sources.",
    response_model=InstrumentsOut,
    response_description="the instruments of the knowledge base",
    responses=error_responses(401, 403),
)
def list_instruments(kb: KnowledgeDep, user: Reader) -> InstrumentsOut:
    return InstrumentsOut(kb_version=kb.kb_version, instruments=list(kb.instruments.values()))


@router.get(
    "/drugs",
    tags=["knowledge base"],
    summary="The drugs, their adequate doses and sources",
    description="Each drug of the knowledge base: names, brands, class, adequate and usual "
    "maximum doses, augmentation doses, codes (RxNorm, ATC) and sources; `verified` is false "
    "where a figure is not yet confirmed in its original source.",
    response_model=DrugsOut,
    response_description="the drugs of the knowledge base",
    responses=error_responses(401, 403),
)
def list_drugs(kb: KnowledgeDep, user: Reader) -> DrugsOut:
    return DrugsOut(kb_version=kb.kb_version, drugs=list(kb.drugs.values()))


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def api_docs(request: Request, user: Reader) -> Response:
    """A server-rendered reference of the API, built from its OpenAPI document (no CDN, no JS)."""
    return render(request, "api/docs.html", {"api": api_reference(request.app.openapi())})
