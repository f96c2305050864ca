"""The signed-in user's own account: open sessions, sign out everywhere, the second factor.

- ``GET /account``: the user's open sessions (this one marked), "sign out everywhere", and
  whether a second factor is set up (recovery codes left).
- ``POST /account/signout-everywhere``: ends every session of the user, this one included.
- ``GET /account/totp``: enrolment: a new secret as text and as a QR code of its ``otpauth://``
  address (issuer "TRD Navigator"); ``POST /account/totp`` confirms it with a first code and
  shows the recovery codes, once.
- ``POST /account/totp/disable``: with a current code (or a recovery code) the second factor is
  removed. ``POST /account/totp/recovery-codes``: with a current code, new recovery codes replace
  the old ones (shown once). Wrong codes here count as failed sign-ins (the same throttle), so a
  session left open cannot be used to guess them.

A user whose role requires a second factor may use the enrolment pages and sign-out before
setting it up (``Enrolling``); every other page sends them here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from trdnav.storage import models as m
from trdnav.storage.repository import record_audit
from trdnav.web.app import clear_session_cookie
from trdnav.web.deps import (
    CurrentUser,
    Enrolling,
    Reader,
    SessionDep,
    SettingsDep,
    client_ip,
)
from trdnav.web.pages import render
from trdnav.web.security import record_failed_signin, signin_blocked
from trdnav.web.sessions import as_utc, open_sessions, revoke_user_sessions
from trdnav.web.settings import WebSettings
from trdnav.web.totp import (
    accept_code,
    active_totp,
    check_second_factor,
    grouped,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
    qr_svg,
    recovery_codes_left,
    remove_totp,
    totp_required,
)

router = APIRouter(include_in_schema=False)

NOTICES = {
    "totp_disabled": "The second factor is off: you sign in with your password alone.",
}


def _account_page(
    request: Request,
    db: Session,
    user: CurrentUser,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    settings: WebSettings = request.app.state.settings
    current = request.state.session
    sessions = [
        (s, as_utc(s.created_at), as_utc(s.last_seen), current is not None and s.id == current.id)
        for s in open_sessions(
            db, user.id, settings.idle_timeout_minutes * 60, settings.session_max_hours * 3600
        )
    ]
    totp = active_totp(db, user.id)
    context = {
        "sessions": sessions,
        "totp_on": totp is not None,
        "codes_left": recovery_codes_left(db, user.id) if totp is not None else 0,
        "required": _required(settings, user),
        "error": error,
        "notice": notice,
    }
    return render(request, "account/page.html", context, status_code=status_code, user=user)


def _required(settings: WebSettings, user: CurrentUser) -> bool:
    return totp_required(
        user.role, settings.require_totp_for_admins, settings.require_totp_for_clinicians
    )


@router.get("/account")
def account(request: Request, db: SessionDep, user: Reader) -> Response:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return _account_page(request, db, user, notice=notice)


@router.post("/account/signout-everywhere")
def signout_everywhere(request: Request, db: SessionDep, user: Enrolling) -> Response:
    revoke_user_sessions(db, user.id)
    record_audit(db, user.who, "signout_everywhere", "user", str(user.id), client_ip(request))
    db.commit()
    response = RedirectResponse("/signin?reason=signed_out_everywhere", status_code=303)
    clear_session_cookie(request, response)
    request.state.session = None
    return response


def _enrol_page(
    request: Request,
    user: CurrentUser,
    row: m.UserTotp,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    uri = provisioning_uri(row.secret, user.username)
    settings: WebSettings = request.app.state.settings
    context = {
        "secret": grouped(row.secret),
        "uri": uri,
        "qr": qr_svg(uri),
        "error": error,
        "required": _required(settings, user),
    }
    return render(request, "account/totp.html", context, status_code=status_code, user=user)


@router.get("/account/totp")
def totp_page(request: Request, db: SessionDep, user: Enrolling) -> Response:
    if active_totp(db, user.id) is not None:
        return RedirectResponse("/account", status_code=303)
    row = db.get(m.UserTotp, user.id)
    if row is None:  # a secret waiting for its first code keeps its value across reloads
        row = m.UserTotp(
            user_id=user.id, secret=new_secret(), created_at=datetime.now(UTC), confirmed_at=None
        )
        db.add(row)
        db.commit()
    return _enrol_page(request, user, row)


@router.post("/account/totp")
def totp_confirm(
    request: Request,
    db: SessionDep,
    user: Enrolling,
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    row = db.get(m.UserTotp, user.id)
    if row is None or row.confirmed_at is not None:
        message = (
            "A second factor is set up already."
            if row is not None
            else "Open the set-up page first: it shows the secret to add to your app."
        )
        return _account_page(request, db, user, error=message, status_code=409)
    ip = client_ip(request)
    if not accept_code(db, row, code):
        record_audit(db, user.who, "totp_failed", "user", str(user.id), ip)
        db.commit()
        return _enrol_page(
            request,
            user,
            row,
            error="That code is not right: expected the 6 digits your app shows now for "
            "TRD Navigator (check that the phone's clock is right).",
            status_code=422,
        )
    row.confirmed_at = datetime.now(UTC)
    codes = new_recovery_codes(db, user.id)
    record_audit(db, user.who, "totp_enrolled", "user", str(user.id), ip)
    db.commit()
    return render(request, "account/recovery_codes.html", {"codes": codes}, user=user)


def _with_current_code(
    request: Request, db: Session, settings: WebSettings, user: CurrentUser, code: str
) -> Response | m.UserTotp:
    """The user's second factor when ``code`` is a right code (TOTP or recovery), else the
    account page saying why (no second factor, throttled, wrong code). Throttled and audited."""
    row = active_totp(db, user.id)
    if row is None:
        return _account_page(
            request, db, user, error="No second factor is set up.", status_code=409
        )
    ip = client_ip(request)
    if signin_blocked(
        db, user.username, ip, settings.signin_max_failures, settings.signin_window_minutes
    ):
        record_audit(db, user.who, "totp_throttled", "user", str(user.id), ip)
        db.commit()
        return _account_page(
            request,
            db,
            user,
            error=f"Too many wrong codes. Wait {settings.signin_window_minutes} minutes.",
            status_code=429,
        )
    how = check_second_factor(db, row, code)
    if how is None:
        record_failed_signin(db, user.username, ip)
        record_audit(db, user.who, "totp_failed", "user", str(user.id), ip)
        db.commit()
        return _account_page(
            request,
            db,
            user,
            error="That code is not right: expected the current 6-digit code or a recovery "
            "code. Nothing was changed.",
            status_code=422,
        )
    if how == "recovery_code":
        record_audit(db, user.who, "recovery_code_used", "user", str(user.id), ip)
    return row


@router.post("/account/totp/disable")
def totp_disable(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    user: Reader,
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    checked = _with_current_code(request, db, settings, user, code)
    if not isinstance(checked, m.UserTotp):
        return checked
    remove_totp(db, user.id)
    record_audit(db, user.who, "totp_disabled", "user", str(user.id), client_ip(request))
    db.commit()
    return RedirectResponse("/account?done=totp_disabled", status_code=303)


@router.post("/account/totp/recovery-codes")
def renew_recovery_codes(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    user: Reader,
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    checked = _with_current_code(request, db, settings, user, code)
    if not isinstance(checked, m.UserTotp):
        return checked
    codes = new_recovery_codes(db, user.id)
    record_audit(db, user.who, "recovery_codes_renewed", "user", str(user.id), client_ip(request))
    db.commit()
    return render(request, "account/recovery_codes.html", {"codes": codes}, user=user)
