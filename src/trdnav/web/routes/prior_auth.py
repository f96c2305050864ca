"""Prior authorisation in the app: the panel of the patient page (treatment and payer chosen in a
form; the gap list loaded with HTMX), the request packet (a draft letter of medical necessity to
edit, printed as PDF with the criteria, trials, chart and screen) and the API's two reads.

Every answer goes through :mod:`trdnav.reports.prior_auth`, as the CLI's do: the same choice of
policy (and the same errors, naming the field), the same check, the patient's suicide-risk
alerts beside every result.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from trdnav.core.history import History
from trdnav.core.measures import score_measurements
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.payers import PayerPolicy, RequestKind
from trdnav.reports.chart import default_instrument, render_chart
from trdnav.reports.prior_auth import (
    KINDS,
    STATUS_LABELS,
    TREATMENTS,
    UNVERIFIED,
    PriorAuthCheck,
    PriorAuthOut,
    check_policy,
    choose_policy,
    draft_letter,
    effective_line,
    policy_list,
    render_packet_html,
    screen_line,
    summary_line,
)
from trdnav.storage import identity as identities
from trdnav.storage import records
from trdnav.storage.repository import record_audit
from trdnav.web.api_http import ApiRoute, PatientId, bearer_token, session_cookie
from trdnav.web.api_models import error_responses
from trdnav.web.deps import KnowledgeDep, Reader, SessionDep, SettingsDep, TodayDep, client_ip
from trdnav.web.pages import render
from trdnav.web.pdf_processes import render_pdf_in_child

router = APIRouter(include_in_schema=False)
api_router = APIRouter(
    prefix="/api",
    route_class=ApiRoute,
    dependencies=[Depends(bearer_token), Depends(session_cookie)],
)

MAX_LETTER = 30_000  # characters of an edited letter
TREATMENT_NAMES = {"rtms": "rTMS", "esketamine": "Esketamine"}


# --- the API --------------------------------------------------------------------------------


class PoliciesOut(BaseModel):
    kb_version: str
    policies: list[PayerPolicy]


@api_router.get(
    "/patients/{patient_id}/prior-auth",
    tags=["prior authorisation"],
    summary="Check a payer's prior-authorisation criteria against the record",
    description="Each criterion of the policy `payer` for `treatment` (rtms, esketamine): met, "
    "not met, missing data or not applicable, with its reason, the record rows it rests on "
    "(`evidence`) and what is missing; `overall` sums them up. A criterion the record cannot "
    "decide is never met. `alerts` holds the patient's suicide-risk alerts. `date` is the "
    "request date (default today); `kind` initial or renewal. An unknown policy, or one of the "
    "other treatment, is a 422 naming `payer` and listing the choices.",
    response_model=PriorAuthOut,
    response_description="the policy's criteria against the record, with the suicide-risk alerts",
    responses=error_responses(401, 403, 404, 422),
)
def read_prior_auth(
    request: Request,
    patient_id: PatientId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
    payer: Annotated[
        str, Query(max_length=100, description="policy id (`/api/prior-auth/policies`)")
    ],
    treatment: Annotated[Literal["rtms", "esketamine"], Query(description="rtms or esketamine")],
    on: Annotated[
        date | None, Query(alias="date", description="request date YYYY-MM-DD (default today)")
    ] = None,
    kind: Annotated[RequestKind, Query(description="initial or renewal")] = "initial",
) -> PriorAuthOut:
    policy = choose_policy(kb, payer, treatment)
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    return _check(record, kb, policy, on or today, kind).out()


@api_router.get(
    "/prior-auth/policies",
    tags=["prior authorisation"],
    summary="The payer policies for rTMS and esketamine",
    description="Each policy with its payer, number, treatment, version, effective dates, "
    "sources, `verified` and its criteria; `typical` marks a generic set of typical criteria, "
    "`clinic` a clinic's own (TRDNAV_PAYERS_DIR). `treatment` filters.",
    response_model=PoliciesOut,
    response_description="the policies of the knowledge base and the clinic",
    responses=error_responses(401, 403, 422),
)
def list_policies(
    kb: KnowledgeDep,
    user: Reader,
    treatment: Annotated[
        Literal["rtms", "esketamine"] | None, Query(description="rtms or esketamine")
    ] = None,
) -> PoliciesOut:
    return PoliciesOut(kb_version=kb.kb_version, policies=policy_list(kb, treatment))


# --- shared ----------------------------------------------------------------------------------


def _history(record: records.Record) -> History:
    return record.history.model_copy(update={"assessed_on": record.assessment.assessed_on})


def _check(
    record: records.Record, kb: Knowledge, policy: PayerPolicy, on: date, kind: RequestKind
) -> PriorAuthCheck:
    return check_policy(policy, _history(record), record.assessment, kb, on, kind)


def _request_values(
    kb: Knowledge, payer: str, treatment: str, on: str, kind: str, today: date
) -> tuple[PayerPolicy, date, RequestKind]:
    """The packet's choices, strictly: InputError naming each bad field."""
    problems: list[Problem] = []
    when = today
    if on:
        try:
            when = date.fromisoformat(on)
        except ValueError:
            problems.append(Problem("date", "invalid_date", f"expected YYYY-MM-DD, got {on!r}"))
    if kind not in KINDS:
        problems.append(
            Problem("kind", "invalid_kind", f"expected initial or renewal, got {kind!r}")
        )
    try:
        policy = choose_policy(kb, payer, treatment)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    return policy, when, "renewal" if kind == "renewal" else "initial"


def _invalid(request: Request, exc: InputError, today: date) -> Response:
    message = "; ".join(p.render() for p in exc.problems)
    context = {"title": "Invalid request", "message": message, "status": 422}
    return render(request, "errors/error.html", context, status_code=422, today=today)


def _chart(history: History, check: PriorAuthCheck, kb: Knowledge) -> str | None:
    scored = score_measurements(history, kb)
    instrument = default_instrument(scored)
    if instrument is None:
        return None
    try:
        return render_chart(history, scored, check.suicide_alerts, kb, instrument, "svg").decode()
    except ValueError:
        return None


def _view(check: PriorAuthCheck) -> dict[str, Any]:
    return {
        "check": check,
        "r": check.result,
        "p": check.policy,
        "effective": effective_line(check.policy),
        "summary": summary_line(check.result),
        "screen": screen_line(check),
        "status_labels": STATUS_LABELS,
        "unverified_text": UNVERIFIED,
    }


# --- the panel ------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/prior-auth")
def prior_auth_panel(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
    treatment: Annotated[str, Query(max_length=40)] = "",
    payer: Annotated[str, Query(max_length=100)] = "",
    on: Annotated[str, Query(alias="date", max_length=40)] = "",
    kind: Annotated[str, Query(max_length=40)] = "initial",
) -> Response:
    """The panel (an HTMX request gets the panel alone, others the page): the form, and the
    gap list once a payer of the chosen treatment is chosen. A payer of the other treatment
    (the treatment was just changed) is dropped; an unknown one is an error beside its field."""
    errors: dict[str, str] = {}
    if treatment and treatment not in TREATMENTS:
        errors["treatment"] = f"expected rtms or esketamine, got {treatment!r}"
    chosen = treatment if treatment in TREATMENTS else "rtms"
    payers = policy_list(kb, chosen)
    if payer and payer not in kb.payers:
        ids = ", ".join(p.id for p in payers) or "none loaded"
        errors["payer"] = f"no payer policy {payer!r}; {chosen} policies: {ids}"
    policy = next((p for p in payers if p.id == payer), None)
    when = today
    if on:
        try:
            when = date.fromisoformat(on)
        except ValueError:
            errors["date"] = f"expected YYYY-MM-DD, got {on!r}"
    if kind not in KINDS:
        errors["kind"] = f"expected initial or renewal, got {kind!r}"
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    check = None
    if policy is not None and not errors:
        request_kind: RequestKind = "renewal" if kind == "renewal" else "initial"
        check = _check(record, kb, policy, when, request_kind)
    part = request.headers.get("hx-request") is not None
    context: dict[str, Any] = {
        "patient_id": patient_id,
        "a": record.assessment,
        "treatment": chosen,
        "treatments": [(t, TREATMENT_NAMES[t]) for t in TREATMENTS],
        "payers": payers,
        "payer": policy.id if policy is not None else "",
        "date_value": on or today.isoformat(),
        "kind": kind if kind in KINDS else "initial",
        "errors": errors,
        "suicide_alerts": [x for x in record.assessment.alerts if x.code == "suicide_risk"],
        **(_view(check) if check is not None else {"check": None}),
    }
    status = 422 if errors and not part else 200  # htmx swaps 2xx answers only
    template = "prior_auth/_panel.html" if part else "prior_auth/page.html"
    return render(request, template, context, status_code=status, today=today)


# --- the packet -----------------------------------------------------------------------------


@router.get("/patients/{patient_id}/prior-auth/packet")
def packet_page(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Reader,
    today: TodayDep,
    treatment: Annotated[str, Query(max_length=40)] = "",
    payer: Annotated[str, Query(max_length=100)] = "",
    on: Annotated[str, Query(alias="date", max_length=40)] = "",
    kind: Annotated[str, Query(max_length=40)] = "initial",
) -> Response:
    """The draft letter of medical necessity, filled from the record, in a textarea to edit
    before printing the packet."""
    try:
        policy, when, request_kind = _request_values(kb, payer, treatment, on, kind, today)
    except InputError as exc:
        return _invalid(request, exc, today)
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    identity = identities.load_identity(db, patient_id, user=user.who, ip=client_ip(request))
    check = _check(record, kb, policy, when, request_kind)
    letter = draft_letter(
        check, _history(record), record.assessment, kb, today, settings.clinic_name, identity
    )
    context = {
        "patient_id": patient_id,
        "a": record.assessment,
        "identity": identity,
        "letter": letter,
        "max_letter": MAX_LETTER,
        "date_value": when.isoformat(),
        "kind": request_kind,
        "suicide_alerts": check.suicide_alerts,
        **_view(check),
    }
    return render(request, "prior_auth/packet.html", context, today=today)


@router.post("/patients/{patient_id}/prior-auth/packet.pdf")
def packet_pdf(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Reader,
    today: TodayDep,
    treatment: Annotated[str, Form(max_length=40)] = "",
    payer: Annotated[str, Form(max_length=100)] = "",
    on: Annotated[str, Form(alias="date", max_length=40)] = "",
    kind: Annotated[str, Form(max_length=40)] = "initial",
    letter: Annotated[str, Form(max_length=MAX_LETTER)] = "",
) -> Response:
    """The request packet as PDF, with the letter as edited (the generated draft when empty)."""
    try:
        policy, when, request_kind = _request_values(kb, payer, treatment, on, kind, today)
    except InputError as exc:
        return _invalid(request, exc, today)
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    identity = identities.load_identity(db, patient_id, user=user.who, ip=client_ip(request))
    history = _history(record)
    check = _check(record, kb, policy, when, request_kind)
    html = render_packet_html(
        check,
        history,
        record.assessment,
        kb,
        _chart(history, check, kb),
        generated_on=today,
        clinic_name=settings.clinic_name,
        identity=identity,
        letter=letter.replace("\r\n", "\n"),
    )
    pdf = render_pdf_in_child(html)
    record_audit(db, user.who, "export_pdf", "patient", patient_id, client_ip(request))
    db.commit()
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", f"{patient_id}-{policy.id}")[:80]
    name = f"prior-auth-{safe}-{today.isoformat()}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
