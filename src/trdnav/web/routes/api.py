"""The JSON API under ``/api``: the operations of the pages, described by ``/api/openapi.json``.

Request bodies are the history format itself (``History``, a treatment, a measurement, a lab, a
pgx result, a current medication), read as JSON and validated by the code that validates history
files (:func:`trdnav.storage.records.validate` / :func:`~trdnav.storage.records.change`), so an
invalid field is reported at its path in the history (``treatments[3].doses[0].mg_per_day``)
and nothing is stored. Versions: a record's ``version`` is its ETag; replacing a record or
changing a treatment by index needs ``If-Match: "<version>"`` (428 without it, 412 when stale);
appending an item checks ``If-Match`` only when it is sent. Errors have one shape
(:class:`~trdnav.web.api_models.ErrorOut`). Authentication stays in :mod:`trdnav.web.deps`; the
security schemes below only document it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import TypeAdapter
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
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError, record_audit
from trdnav.web.api_docs import api_reference
from trdnav.web.api_models import (
    AcknowledgementOut,
    AlertOut,
    AlertsOut,
    ChangeOut,
    DrugsOut,
    DueItemOut,
    InstrumentsOut,
    PatientListOut,
    PatientRecordOut,
    PatientRowOut,
    SummaryOut,
    error_responses,
)
from trdnav.web.app import error_body
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
from trdnav.web.routes.patients import PAGE_SIZE, acknowledgements, patient_rows
from trdnav.web.security import CSRF_HEADER, SESSION_COOKIE

MAX_LIMIT = 100
ItemEdit = Callable[[dict[str, Any]], None]


class ApiProblem(Exception):
    """An error answered in the API's error shape (status, stable code, message, problems)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: tuple[Problem, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.problems, self.headers = problems, headers
        super().__init__(message)


def _stale(exc: StaleRecordError) -> JSONResponse:
    return JSONResponse(
        error_body(
            "stale_record",
            f"the record is at version {exc.stored}, not {exc.expected}: someone saved it after "
            "you read it, and nothing of yours was stored. GET it again, re-apply your change "
            "and send the new version in If-Match.",
        ),
        status_code=412,
        headers={"ETag": _etag(exc.stored)},
    )


class ApiRoute(APIRoute):
    """Answers :class:`ApiProblem` and stale versions (412) in the API's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiProblem as p:
                problems = [
                    {"loc": x.loc, "code": x.code, "message": x.message} for x in p.problems
                ]
                body = error_body(p.code, p.message, problems)
                return JSONResponse(body, status_code=p.status, headers=p.headers)
            except StaleRecordError as exc:
                return _stale(exc)

        return handle


bearer_token = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="`Authorization: Bearer trd_…` from `trdnav user token USERNAME` (no CSRF).",
)
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="sessionCookie",
    description=f"The browser session; writes must also send the `{CSRF_HEADER}` header.",
)
router = APIRouter(
    prefix="/api",
    route_class=ApiRoute,
    dependencies=[Depends(bearer_token), Depends(session_cookie)],
)

REF = "#/components/schemas/{model}"


def _schema_of(kind: Any) -> dict[str, Any]:
    """The JSON Schema of a history-format model, pointing at the document's components."""
    schema = TypeAdapter(kind).json_schema(ref_template=REF, by_alias=True)
    schema.pop("$defs", None)
    if "properties" in schema:  # a model: its component (registered by the response models)
        return {"$ref": REF.format(model=schema["title"])}
    return schema


def _body_doc(kind: Any, what: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": f"{what}, in the history format (docs/history-format.md)",
            "content": {"application/json": {"schema": _schema_of(kind)}},
        }
    }


def _etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None, required: bool) -> int | None:
    """The version named by ``If-Match`` (``"3"``, ``W/"3"`` or ``3``); ``*`` means any."""
    if if_match is None or not if_match.strip():
        if required:
            raise ApiProblem(
                428,
                "if_match_required",
                'send If-Match: "<version>" with the version you read (the ETag of '
                "GET /api/patients/{id}), so a change made meanwhile is not overwritten",
            )
        return None
    value = if_match.strip()
    if value == "*":
        return None
    value = value.removeprefix("W/").strip('"')
    if not value.isdigit():
        problem = Problem("If-Match", "invalid_etag", 'expected "<version>" as sent in the ETag')
        raise ApiProblem(422, "invalid_input", "the If-Match header is invalid", (problem,))
    return int(value)


async def json_body(request: Request) -> Any:
    """The request's JSON body, decoded (validation is the history format's, later)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and not media.endswith("json"):
        raise ApiProblem(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.body()
    if not raw.strip():
        problem = Problem("", "body_missing", "send a JSON object in the history format")
        raise InputError([problem])
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise InputError([Problem("", "json_invalid", "the body is not UTF-8 text")]) from None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise InputError([Problem("", "json_invalid", message)]) from None


JsonBody = Annotated[Any, Depends(json_body)]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='the version read, as its ETag: "3"'),
]
PatientId = Annotated[str, Path(max_length=120, description="the clinic's patient identifier")]


def _acknowledgement(ack: dict[str, Any] | None) -> AcknowledgementOut | None:
    if ack is None:
        return None
    at: datetime = ack["at"]
    return AcknowledgementOut(by=ack["by"], at=at if at.tzinfo else at.replace(tzinfo=UTC))


def _alerts(db: Session, patient_id: str, a: Assessment) -> list[AlertOut]:
    row_id = records.patient_row_id(db, patient_id)
    acks = acknowledgements(db, [row_id])[row_id] if row_id is not None else {}
    out = []
    for alert in a.alerts:
        key = records.alert_key(alert)
        out.append(AlertOut(key=key, alert=alert, acknowledgement=_acknowledgement(acks.get(key))))
    return out


def _due(items: list[dict[str, str]]) -> list[DueItemOut]:
    return [
        DueItemOut(label=d["label"], status=d["status"], due_on=d["due_on"] or None) for d in items
    ]


def _change_out(
    db: Session, history: History, kb: Knowledge, today: date, item: str | None = None
) -> ChangeOut:
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
        alerts=_alerts(db, patient_id, a),
        next_due=s["next_due"],
        due_items=_due(s["due_items"]),
    )
    version = repository.patient_version(db, patient_id) or 0
    return ChangeOut(patient_id=patient_id, version=version, item=item, summary=summary)


def _row(row: dict[str, Any]) -> PatientRowOut:
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
        overdue=_due(row["overdue"]),
    )


def list_rows(
    db: Session, today: date, q: str, show: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """``limit`` rows from ``offset``, read through the pages of the patient list."""
    first = offset // PAGE_SIZE + 1
    last = (offset + limit - 1) // PAGE_SIZE + 1
    rows: list[dict[str, Any]] = []
    total = 0
    for page in range(first, last + 1):
        found, total = patient_rows(db, today, q, show, page)
        rows.extend(found)
        if len(found) < PAGE_SIZE:
            break
    start = offset - (first - 1) * PAGE_SIZE
    return rows[start : start + limit], total


READ_ERRORS = error_responses(401, 403, 404, 422)
WRITE_ERRORS = error_responses(401, 403, 404, 412, 415, 422)


@router.get(
    "/patients",
    tags=["patients"],
    summary="List patients with their summary columns",
    description="Suicide-risk first, then by the next measure due. The columns are the summary "
    "the core computed when each record was last saved; `overdue` is read against today.",
    response_model=PatientListOut,
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
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PatientListOut:
    rows, total = list_rows(db, today, q.strip(), show, limit, offset)
    record_audit(db, user.who, "list", "patient", None, client_ip(request))
    db.commit()
    return PatientListOut(items=[_row(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post(
    "/patients",
    tags=["patients"],
    summary="Create a patient from a whole history",
    description="201 with `Location` and `ETag`; 409 when a patient with this id exists.",
    status_code=201,
    response_model=ChangeOut,
    responses=error_responses(401, 403, 409, 415, 422),
    openapi_extra=_body_doc(History, "the whole history"),
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
    out = _change_out(db, history, kb, today)
    response.headers["Location"] = f"/api/patients/{quote(patient_id, safe='')}"
    response.headers["ETag"] = _etag(out.version)
    return out


@router.get(
    "/patients/{patient_id}",
    tags=["patients"],
    summary="Read a patient's history and its version",
    description='The history in the history format; `version` is also the `ETag` ("3"), '
    "to send back in `If-Match` when changing the record.",
    response_model=PatientRecordOut,
    response_model_exclude_none=True,
    responses=READ_ERRORS,
)
def read_patient(
    request: Request, response: Response, patient_id: PatientId, db: SessionDep, user: Reader
) -> PatientRecordOut:
    history, version = repository.load_record(db, patient_id, user.who, client_ip(request))
    response.headers["ETag"] = _etag(version)
    return PatientRecordOut(id=patient_id, version=version, history=history)


@router.put(
    "/patients/{patient_id}",
    tags=["patients"],
    summary="Replace a patient's whole history",
    description='Requires `If-Match: "<version>"` (428 without it; 412 when someone saved '
    "since). The body's `patient.id` must be the path's id.",
    response_model=ChangeOut,
    responses=error_responses(401, 403, 404, 412, 415, 422, 428),
    openapi_extra=_body_doc(History, "the whole history"),
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
    out = _change_out(db, history, kb, today)
    response.headers["ETag"] = _etag(out.version)
    return out


@router.get(
    "/patients/{patient_id}/assessment",
    tags=["patients"],
    summary="Assess the record as of today",
    description="The full assessment, the same JSON as `trdnav assess --json`: alerts (and "
    "crisis resources) first, TRD status, trials, staging, measurements, plan, workup.",
    response_model=Assessment,
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
    out = _change_out(db, updated, kb, today, item[0] if item else None)
    response.headers["ETag"] = _etag(out.version)
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
        responses=WRITE_ERRORS,
        openapi_extra=_body_doc(kind, what),
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
    responses=error_responses(401, 403, 404, 412, 415, 422, 428),
    openapi_extra=_body_doc(Treatment, "the treatment"),
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
        alerts=_alerts(db, patient_id, a),
        crisis_resources=list(a.crisis_resources),
    )


@router.post(
    "/patients/{patient_id}/alerts/{alert_key}/acknowledge",
    tags=["alerts"],
    summary="Acknowledge an alert",
    description="Records who acknowledged the alert and when (audited). Acknowledging it again "
    "keeps the first acknowledgement. 404 when the record has no such alert today.",
    response_model=AlertOut,
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
    return AlertOut(key=alert_key, alert=alert, acknowledgement=_acknowledgement(known))


@router.get(
    "/instruments",
    tags=["knowledge base"],
    summary="The rating scales and screeners",
    description="Items (wording only where the licence allows), ranges, bands, rules, sources.",
    response_model=InstrumentsOut,
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
    responses=error_responses(401, 403),
)
def list_drugs(kb: KnowledgeDep, user: Reader) -> DrugsOut:
    return DrugsOut(kb_version=kb.kb_version, drugs=list(kb.drugs.values()))


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def api_docs(request: Request, user: Reader) -> Response:
    """A server-rendered reference of the API, built from its OpenAPI document (no CDN, no JS)."""
    return render(request, "api/docs.html", {"api": api_reference(request.app.openapi())})
