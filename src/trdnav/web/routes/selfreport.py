"""Patient self-report: a clinician makes a single-use link; the patient fills one questionnaire.

Clinician side (``Writer``): ``GET /patients/{id}/selfreport/new`` picks one of the instruments the
knowledge base marks ``rater: self_report`` and a lifetime; ``POST /patients/{id}/selfreport``
stores the link and shows it (address to copy, QR code when ``segno`` is installed); the patient's
links are listed with their status and an unused one can be revoked.

Patient side (no account, no session, no role): ``GET /r/{token}`` shows the questionnaire and
``POST /r/{token}`` stores the answers as a measurement dated today through ``records.change``,
which validates and audits it; the link is marked used in the same transaction, so either both
are stored or neither. A used or expired link is a 410 page, a forged one a 404 page; neither says
anything about the patient.

Why no session CSRF token on the patient's form: CSRF abuses credentials a browser sends by itself
(a cookie). These routes never read the session; their only credential is the unguessable signed
token in the address, which a forging site cannot know. A hidden per-render nonce, signed for this
link, must come back with the answers, so only a form this server rendered for this very link is
accepted. The link itself is single-use and expiring, checked on the server at submission.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trdnav.core.alerts import crisis_resources, suicide_alerts
from trdnav.core.measures import score_measurements
from trdnav.errors import InputError
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument
from trdnav.storage import models as m
from trdnav.storage import records
from trdnav.storage.repository import PatientNotFoundError, record_audit
from trdnav.web import selfreport_links as links
from trdnav.web.deps import KnowledgeDep, SessionDep, SettingsDep, TodayDep, Writer, client_ip
from trdnav.web.pages import render
from trdnav.web.selfreport_form import (
    blanks_allowed,
    parse_answers,
    questions,
    self_report_instruments,
    stem,
    wording_shown,
)
from trdnav.web.settings import WebSettings

router = APIRouter(include_in_schema=False)

ENTITY = "selfreport_link"
NONCE_FIELD = "form_nonce"
LINKS_LISTED = 20


# --- links -----------------------------------------------------------------------------------


class LinkUnavailableError(Exception):
    """The link cannot be used: ``kind`` is ``invalid``, ``used`` or ``expired``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(kind)


@dataclass(frozen=True)
class OpenLink:
    link: m.SelfReportLink
    patient_id: str
    inst: Instrument


def resolve(db: Session, settings: WebSettings, kb: Knowledge, token: str) -> OpenLink:
    """The link a token names, when it may still be used; raises ``LinkUnavailableError``."""
    link_id = links.verify_link(settings.secret_key, token)
    link = db.get(m.SelfReportLink, link_id) if link_id else None
    inst = kb.instruments.get(link.instrument) if link is not None else None
    patient = db.get(m.Patient, link.patient_id) if link is not None else None
    if link is None or inst is None or patient is None:
        raise LinkUnavailableError("invalid")
    status = links.link_status(link.created_at, link.expires_at, link.used_at, datetime.now(UTC))
    if status is links.LinkStatus.USED:
        raise LinkUnavailableError("used")
    if status is not links.LinkStatus.UNUSED:
        raise LinkUnavailableError("expired")
    return OpenLink(link, patient.external_id, inst)


def patient_links(db: Session, patient_row_id: int) -> list[dict[str, Any]]:
    """The patient's latest links with their status, for the clinician."""
    now = datetime.now(UTC)
    rows = db.execute(
        select(m.SelfReportLink, m.User.username)
        .join(m.User, m.User.id == m.SelfReportLink.created_by)
        .where(m.SelfReportLink.patient_id == patient_row_id)
        .order_by(m.SelfReportLink.created_at.desc())
        .limit(LINKS_LISTED)
    ).all()
    return [
        {
            "id": link.id,
            "instrument": link.instrument,
            "created_at": links.as_utc(link.created_at),
            "created_by": username,
            "expires_at": links.as_utc(link.expires_at),
            "used_at": links.as_utc(link.used_at) if link.used_at else None,
            "status": links.link_status(link.created_at, link.expires_at, link.used_at, now),
        }
        for link, username in rows
    ]


def patient_row(db: Session, patient_id: str) -> int:
    row_id = records.patient_row_id(db, patient_id)
    if row_id is None:
        raise PatientNotFoundError(patient_id)
    return row_id


def qr_svg(url: str) -> Markup | None:
    """The address as an inline SVG QR code, or ``None`` when ``segno`` is not installed."""
    try:
        segno = importlib.import_module("segno")
    except ImportError:
        return None
    svg: str = segno.make(url, error="m").svg_inline(
        scale=1, border=2, omitsize=True, svgclass="qr", title="QR code of the link"
    )
    return Markup(svg)  # noqa: S704 - generated by segno from our own URL, not user input


def _new_page(
    request: Request,
    db: Session,
    kb: Knowledge,
    settings: WebSettings,
    patient_id: str,
    row_id: int,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    context = {
        "patient_id": patient_id,
        "instruments": [(i, wording_shown(i)) for i in self_report_instruments(kb)],
        "links": patient_links(db, row_id),
        "kb": kb,
        "values": values,
        "errors": errors,
        "max_hours": links.MAX_LINK_HOURS,
        "default_hours": settings.selfreport_link_hours,
    }
    return render(request, "selfreport/new.html", context, status_code)


@router.get("/patients/{patient_id}/selfreport/new")
def new_link(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Writer,
) -> Response:
    row_id = patient_row(db, patient_id)
    record_audit(db, user.who, "read", ENTITY, patient_id, client_ip(request))
    db.commit()
    values = {"instrument": "phq9", "hours": str(settings.selfreport_link_hours)}
    return _new_page(request, db, kb, settings, patient_id, row_id, values, {})


@router.post("/patients/{patient_id}/selfreport")
def create_link(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Writer,
    instrument: Annotated[str, Form(max_length=64)] = "",
    hours: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    row_id = patient_row(db, patient_id)
    errors: dict[str, str] = {}
    allowed = {i.id for i in self_report_instruments(kb)}
    if instrument not in allowed:
        errors["instrument"] = "Choose one of the questionnaires listed."
    lifetime = int(hours) if hours.strip().isdigit() else 0
    if not 1 <= lifetime <= links.MAX_LINK_HOURS:
        errors["hours"] = f"Give a whole number of hours from 1 to {links.MAX_LINK_HOURS}."
    if errors:
        values = {"instrument": instrument, "hours": hours}
        return _new_page(request, db, kb, settings, patient_id, row_id, values, errors, 422)
    now = datetime.now(UTC)
    link_id = links.new_link_id()
    db.add(
        m.SelfReportLink(
            id=link_id,
            patient_id=row_id,
            instrument=instrument,
            created_by=user.id,
            created_at=now,
            expires_at=links.expiry(now, lifetime),
        )
    )
    record_audit(db, user.who, "create", ENTITY, patient_id, client_ip(request))
    db.commit()
    return RedirectResponse(f"/patients/{patient_id}/selfreport/{link_id}", status_code=303)


@router.get("/patients/{patient_id}/selfreport/{link_id}")
def show_link(
    request: Request,
    patient_id: str,
    link_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Writer,
) -> Response:
    row_id = patient_row(db, patient_id)
    link = db.get(m.SelfReportLink, link_id)
    if link is None or link.patient_id != row_id:
        return render(request, "errors/error.html", _no_link(), 404)
    record_audit(db, user.who, "read", ENTITY, patient_id, client_ip(request))
    db.commit()
    now = datetime.now(UTC)
    status = links.link_status(link.created_at, link.expires_at, link.used_at, now)
    base = settings.public_base_url or str(request.base_url)
    url = links.link_url(base, links.sign_link(settings.secret_key, link.id))
    inst = kb.instruments.get(link.instrument)
    context = {
        "patient_id": patient_id,
        "link_id": link.id,
        "expires_at": links.as_utc(link.expires_at),
        "status": status,
        "inst": inst,
        "wording": inst is not None and wording_shown(inst),
        "url": url if status is links.LinkStatus.UNUSED else None,
        "qr": qr_svg(url) if status is links.LinkStatus.UNUSED else None,
    }
    return render(request, "selfreport/link.html", context)


def _no_link() -> dict[str, str]:
    return {"title": "No such link", "message": "This patient has no such self-report link."}


@router.post("/patients/{patient_id}/selfreport/{link_id}/revoke")
def revoke_link(
    request: Request, patient_id: str, link_id: str, db: SessionDep, user: Writer
) -> Response:
    row_id = patient_row(db, patient_id)
    link = db.get(m.SelfReportLink, link_id)
    if link is None or link.patient_id != row_id:
        return render(request, "errors/error.html", _no_link(), 404)
    db.execute(
        update(m.SelfReportLink)
        .where(m.SelfReportLink.id == link_id, m.SelfReportLink.used_at.is_(None))
        .values(expires_at=m.SelfReportLink.created_at)
        .execution_options(synchronize_session=False)
    )
    record_audit(db, user.who, "revoke", ENTITY, patient_id, client_ip(request))
    db.commit()
    return RedirectResponse(f"/patients/{patient_id}/selfreport/new", status_code=303)


# --- the patient's pages ---------------------------------------------------------------------

UNAVAILABLE = {
    "invalid": (
        404,
        "This link does not work",
        "The address may be incomplete or mistyped. Check that you copied the whole link, or "
        "ask your clinic for a new one.",
    ),
    "used": (
        410,
        "This questionnaire has already been sent",
        "Each link can be used once, and this one has been used. Thank you. If you want to send "
        "new answers, ask your clinic for a new link.",
    ),
    "expired": (
        410,
        "This link has expired",
        "For your privacy, links only work for a short time, and this one no longer works. "
        "Please ask your clinic for a new link.",
    ),
    "stale_form": (
        400,
        "Please try again",
        "This page was out of date, so your answers were not sent. Open the link again and fill "
        "in the questionnaire once more.",
    ),
    "not_saved": (
        503,
        "Your answers could not be saved",
        "Something went wrong on our side, and nothing was saved. Please try again later, or "
        "contact your clinic.",
    ),
}


def _patient_page(
    request: Request,
    kb: Knowledge,
    settings: WebSettings,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    resources = [
        {"name": c.name, "contact": c.contact, "dial": links.dial_number(c.contact)}
        for c in crisis_resources(kb, settings.locale)
    ]
    tpl = request.app.state.templates
    ctx = {"clinic_name": settings.clinic_name, "crisis": resources, **context}
    response: Response = tpl.TemplateResponse(request, template, ctx, status_code=status_code)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _unavailable(request: Request, kb: Knowledge, settings: WebSettings, kind: str) -> Response:
    status, title, message = UNAVAILABLE[kind]
    context = {"title": title, "message": message, "kind": kind}
    return _patient_page(request, kb, settings, "selfreport/unavailable.html", context, status)


def _form_page(
    request: Request,
    kb: Knowledge,
    settings: WebSettings,
    found: OpenLink,
    today: date,
    answers: Mapping[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    context = {
        "inst": found.inst,
        "stem": stem(found.inst),
        "questions": questions(found.inst),
        "wording": wording_shown(found.inst),
        "blanks_allowed": blanks_allowed(found.inst),
        "today": f"{today.day} {today:%B %Y}",
        "answers": answers,
        "errors": errors,
        "nonce_field": NONCE_FIELD,
        "nonce": links.form_nonce(settings.secret_key, found.link.id),
    }
    return _patient_page(request, kb, settings, "selfreport/form.html", context, status_code)


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormFields = Annotated[dict[str, str], Depends(form_fields)]


@router.get("/r/{token}")
def patient_form(
    request: Request,
    token: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    today: TodayDep,
) -> Response:
    try:
        found = resolve(db, settings, kb, token)
    except LinkUnavailableError as exc:
        return _unavailable(request, kb, settings, exc.kind)
    record_audit(db, links.who(found.link.id), "open", ENTITY, found.patient_id, client_ip(request))
    db.commit()
    return _form_page(request, kb, settings, found, today, {}, {})


def mark_used(db: Session, link_id: str, now: datetime) -> Callable[[m.Patient], None]:
    """Mark the link used inside the record's transaction; refuse when it is no longer open."""

    def also(patient: m.Patient) -> None:
        result = db.execute(
            update(m.SelfReportLink)
            .where(
                m.SelfReportLink.id == link_id,
                m.SelfReportLink.patient_id == patient.id,
                m.SelfReportLink.used_at.is_(None),
                m.SelfReportLink.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise LinkUnavailableError("used")  # a concurrent submission won the race

    return also


@router.post("/r/{token}")
def submit_form(
    request: Request,
    token: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    today: TodayDep,
    fields: FormFields,
) -> Response:
    try:
        found = resolve(db, settings, kb, token)
    except LinkUnavailableError as exc:
        return _unavailable(request, kb, settings, exc.kind)
    if not links.nonce_matches(settings.secret_key, fields.get(NONCE_FIELD), found.link.id):
        return _unavailable(request, kb, settings, "stale_form")
    answers, errors = parse_answers(found.inst, fields)
    if errors:
        return _form_page(request, kb, settings, found, today, fields, errors, 422)
    measurement = {"instrument": found.inst.name, "date": today.isoformat(), "items": answers}
    position: list[int] = []

    def add_measurement(data: records.HistoryData) -> None:
        stored = data.setdefault("measurements", [])
        position.append(len(stored))
        stored.append(measurement)

    who = links.who(found.link.id)
    try:
        history = records.change(
            db,
            found.patient_id,
            add_measurement,
            kb,
            today,
            user=who,
            expected_version=None,
            ip=client_ip(request),
            also=mark_used(db, found.link.id, datetime.now(UTC)),
        )
    except LinkUnavailableError as exc:
        return _unavailable(request, kb, settings, exc.kind)
    except (InputError, SQLAlchemyError, PatientNotFoundError):
        # the record refused the change for a reason the patient cannot fix: nothing was stored
        return _unavailable(request, kb, settings, "not_saved")
    alerts = suicide_alerts(history, score_measurements(history, kb), kb)
    signal = any(a.measurement_index == position[0] for a in alerts)
    return _patient_page(request, kb, settings, "selfreport/thanks.html", {"signal": signal})
