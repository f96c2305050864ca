"""Sign-in (password, then a second-factor code when the user has one) and sign-out.

The sign-in form is protected against login CSRF with a double-submit token: ``GET /signin`` sets
a short-lived signed cookie (``trdnav_signin``; HttpOnly, SameSite=Strict) and puts the same value
in a hidden field; ``POST /signin`` refuses a missing, forged, expired or mismatched token with 403
before it looks at the user name or password.

A user with a second factor gets no session from the password: ``POST /signin`` stores a pending
sign-in (``pending_signins``: five minutes, its token's SHA-256 only) and sends the browser to
``/signin/code`` with the token in a cookie (``trdnav_pending``; HttpOnly, SameSite=Strict, path
``/signin``). The session begins when ``POST /signin/code`` gets a right TOTP code or an unused
recovery code. A wrong code counts as a failed sign-in of that user name (the same throttle).

Every sign-in starts a new session (a new token, a new CSRF token); a session the browser held
before is ended (no session fixation). Sign-out deletes the session's row.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from trdnav.storage import models as m
from trdnav.storage.repository import record_audit
from trdnav.web.app import clear_session_cookie, set_session_cookie
from trdnav.web.deps import Enrolling, SessionDep, SettingsDep, client_ip
from trdnav.web.pages import render
from trdnav.web.security import (
    CSRF_FIELD,
    PENDING_COOKIE,
    SESSION_COOKIE,
    clear_failed_signins,
    csrf_matches,
    hash_password,
    needs_rehash,
    record_failed_signin,
    signin_blocked,
    verify_password,
)
from trdnav.web.sessions import (
    as_utc,
    digest,
    password_mark,
    purge_expired,
    revoke_session,
    start_session,
)
from trdnav.web.settings import WebSettings
from trdnav.web.totp import active_totp, check_second_factor

router = APIRouter(include_in_schema=False)

SIGNIN_COOKIE = "trdnav_signin"
SIGNIN_TOKEN_SECONDS = 30 * 60
PENDING_SECONDS = 5 * 60  # how long a right password waits for its code

REASONS = {
    "idle": "You were signed out after a period without activity. Sign in again to continue.",
    "signed_out": "You are signed out.",
    "signed_out_everywhere": "You are signed out on every computer and browser.",
    "revoked": "Your session was ended (signed out everywhere, or by an administrator). "
    "Sign in again to continue.",
    "code_expired": "The sign-in waited too long for its code, or was already used. "
    "Enter your user name and password again.",
}


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no '//').

    Browsers read a backslash as a slash and drop tabs and newlines, so ``/\\evil.example`` or
    ``/<tab>/evil.example`` would leave the site: any backslash, space or control character
    refuses the target.
    """
    if not target:
        return "/patients"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or any(c == "\\" or c.isspace() or not c.isprintable() for c in target)
    ):
        return "/patients"
    return target


def _signin_serializer(settings: WebSettings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt="trdnav-signin")


def _signin_token_valid(settings: WebSettings, cookie: str | None, given: str | None) -> bool:
    """The form's token equals the cookie's, and the cookie is ours and recent."""
    if not cookie or not given or not hmac.compare_digest(cookie.encode(), given.encode()):
        return False
    try:
        _signin_serializer(settings).loads(cookie, max_age=SIGNIN_TOKEN_SECONDS)
    except BadSignature:
        return False
    return True


def _signin_form(request: Request, context: dict[str, object], status_code: int = 200) -> Response:
    """The sign-in page with a fresh double-submit token (field and cookie)."""
    settings: WebSettings = request.app.state.settings
    token = _signin_serializer(settings).dumps(secrets.token_urlsafe(24))
    response = render(
        request, "auth/signin.html", {**context, "signin_token": token}, status_code=status_code
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=SIGNIN_TOKEN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/signin",
    )
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/patients", status_code=303)


@router.get("/signin")
def signin_page(request: Request, reason: str = "", next: str = "") -> Response:
    return _signin_form(
        request,
        {"notice": REASONS.get(reason), "next": _safe_next(next), "error": None, "username": ""},
    )


@router.post("/signin")
def signin(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=120)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=512)] = "",
) -> Response:
    ip = client_ip(request)
    username = username.strip()

    def refuse(message: str, status: int) -> Response:
        return _signin_form(
            request,
            {"notice": None, "next": _safe_next(next), "error": message, "username": username},
            status_code=status,
        )

    if not _signin_token_valid(settings, request.cookies.get(SIGNIN_COOKIE), csrf_token):
        return refuse(
            "This sign-in form has expired or did not come from this site. "
            "Nothing was checked: enter your user name and password again.",
            403,
        )
    user = db.scalar(select(m.User).where(m.User.username == username)) if username else None
    # a name that is no user's is not written down: it may be a password typed in the wrong field
    who = user.username if user is not None else "(unknown user)"
    user_id = str(user.id) if user is not None else None
    if signin_blocked(
        db, username, ip, settings.signin_max_failures, settings.signin_window_minutes
    ):
        record_audit(db, who, "signin_throttled", "user", user_id, ip)
        db.commit()
        return refuse(
            f"Too many failed sign-ins. Wait {settings.signin_window_minutes} minutes and try "
            "again, or ask an administrator to reset your password.",
            429,
        )
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        record_failed_signin(db, username, ip)
        record_audit(db, who, "signin_failed", "user", user_id, ip)
        db.commit()
        return refuse("The user name or password is not right.", 401)
    if needs_rehash(user.password_hash):
        old_mark = password_mark(user.password_hash)
        user.password_hash = hash_password(password)
        # the same password, stronger hash: the user's other sessions stay open
        db.execute(
            update(m.UserSession)
            .where(m.UserSession.user_id == user.id, m.UserSession.password_sha256 == old_mark)
            .values(password_sha256=password_mark(user.password_hash))
        )
    if active_totp(db, user.id) is not None:
        # the password was right: the failures are cleared only by a right code too
        return _await_code(request, db, user, _safe_next(next))
    return _complete_signin(request, db, user, _safe_next(next))


def _await_code(request: Request, db: Session, user: m.User, next_path: str) -> Response:
    """The password was right and the user has a second factor: a pending sign-in, no session."""
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    db.execute(delete(m.PendingSignin).where(m.PendingSignin.user_id == user.id))
    db.add(
        m.PendingSignin(
            token_sha256=digest(token),
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            next_path=next_path[:500],
            created_at=now,
            expires_at=now + timedelta(seconds=PENDING_SECONDS),
        )
    )
    record_audit(db, user.username, "signin_second_step", "user", str(user.id), client_ip(request))
    db.commit()
    response = RedirectResponse("/signin/code", status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        token,
        max_age=PENDING_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/signin",
    )
    return response


def _complete_signin(request: Request, db: Session, user: m.User, next_path: str) -> Response:
    """Both factors are right: a new session (a session the browser held before is ended)."""
    settings: WebSettings = request.app.state.settings
    ip = client_ip(request)
    purge_expired(db, settings.idle_timeout_minutes * 60, settings.session_max_hours * 3600)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        db.execute(delete(m.UserSession).where(m.UserSession.token_sha256 == digest(previous)))
    clear_failed_signins(db, user.username)
    token, _data = start_session(db, user, ip=ip, user_agent=request.headers.get("user-agent"))
    record_audit(db, user.username, "signin", "user", str(user.id), ip)
    db.commit()
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(SIGNIN_COOKIE, path="/signin", httponly=True, samesite="strict")
    response.delete_cookie(PENDING_COOKIE, path="/signin", httponly=True, samesite="strict")
    return response


def _pending(db: Session, request: Request) -> m.PendingSignin | None:
    """The browser's pending sign-in, if it is still waiting for its code."""
    token = request.cookies.get(PENDING_COOKIE)
    if not token:
        return None
    row = db.scalar(select(m.PendingSignin).where(m.PendingSignin.token_sha256 == digest(token)))
    if row is None or as_utc(row.expires_at) < datetime.now(UTC):
        return None
    return row


def _code_form(
    request: Request, pending: m.PendingSignin, error: str | None, status_code: int = 200
) -> Response:
    context = {"pending_token": pending.csrf, "error": error, "minutes": PENDING_SECONDS // 60}
    return render(request, "auth/code.html", context, status_code=status_code)


def _start_again(request: Request, status_code: int) -> Response:
    """The sign-in form, saying the code step has to start again from the password."""
    context = {"notice": REASONS["code_expired"], "next": "/patients", "error": None}
    response = _signin_form(request, {**context, "username": ""}, status_code=status_code)
    response.delete_cookie(PENDING_COOKIE, path="/signin", httponly=True, samesite="strict")
    return response


@router.get("/signin/code")
def code_page(request: Request, db: SessionDep) -> Response:
    pending = _pending(db, request)
    if pending is None:
        return _start_again(request, 200)
    return _code_form(request, pending, None)


@router.post("/signin/code")
def code_step(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    code: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=512)] = "",
) -> Response:
    pending = _pending(db, request)
    if pending is None:
        return _start_again(request, 400)
    if not csrf_matches(pending.csrf, csrf_token):
        return _code_form(
            request,
            pending,
            "This form did not come from this site, or is out of date. Nothing was checked.",
            403,
        )
    ip = client_ip(request)
    user = db.get(m.User, pending.user_id)
    totp = active_totp(db, pending.user_id)
    if user is None or not user.active or totp is None:
        db.delete(pending)
        db.commit()
        return _start_again(request, 400)
    if signin_blocked(
        db, user.username, ip, settings.signin_max_failures, settings.signin_window_minutes
    ):
        record_audit(db, user.username, "totp_throttled", "user", str(user.id), ip)
        db.commit()
        return _code_form(
            request,
            pending,
            f"Too many wrong codes or passwords. Wait {settings.signin_window_minutes} minutes "
            "and try again, or ask an administrator.",
            429,
        )
    how = check_second_factor(db, totp, code)
    if how is None:
        record_failed_signin(db, user.username, ip)
        record_audit(db, user.username, "totp_failed", "user", str(user.id), ip)
        db.commit()
        return _code_form(
            request,
            pending,
            "That code is not right, or was used already. Enter the current code from your "
            "authenticator app, or one of your recovery codes.",
            401,
        )
    if how == "recovery_code":
        record_audit(db, user.username, "recovery_code_used", "user", str(user.id), ip)
    next_path = pending.next_path
    db.delete(pending)
    return _complete_signin(request, db, user, next_path)


@router.post("/signout")
def signout(request: Request, db: SessionDep, user: Enrolling) -> Response:
    session = request.state.session
    if session is not None:
        revoke_session(db, session.id)
    record_audit(db, user.who, "signout", "user", str(user.id), client_ip(request))
    db.commit()
    response = RedirectResponse("/signin?reason=signed_out", status_code=303)
    clear_session_cookie(request, response)
    request.state.session = None
    return response
