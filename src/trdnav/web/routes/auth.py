"""Sign-in and sign-out.

The sign-in form is protected against login CSRF with a double-submit token: ``GET /signin`` sets
a short-lived signed cookie (``trdnav_signin``; HttpOnly, SameSite=Strict) and puts the same value
in a hidden field; ``POST /signin`` refuses a missing, forged, expired or mismatched token with 403
before it looks at the user name or password.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from trdnav.storage import models as m
from trdnav.storage.repository import record_audit
from trdnav.web.app import clear_session_cookie, set_session_cookie
from trdnav.web.deps import Reader, SessionDep, SettingsDep, client_ip
from trdnav.web.pages import render
from trdnav.web.security import (
    CSRF_FIELD,
    SessionCodec,
    clear_failed_signins,
    hash_password,
    needs_rehash,
    record_failed_signin,
    signin_blocked,
    verify_password,
)
from trdnav.web.settings import WebSettings

router = APIRouter(include_in_schema=False)

SIGNIN_COOKIE = "trdnav_signin"
SIGNIN_TOKEN_SECONDS = 30 * 60

REASONS = {
    "idle": "You were signed out after a period without activity. Sign in again to continue.",
    "signed_out": "You are signed out.",
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
        user.password_hash = hash_password(password)
    clear_failed_signins(db, username)
    record_audit(db, user.username, "signin", "user", str(user.id), ip)
    db.commit()
    codec: SessionCodec = request.app.state.session_codec
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, codec.dumps(codec.new(user.id)))
    response.delete_cookie(SIGNIN_COOKIE, path="/signin", httponly=True, samesite="strict")
    return response


@router.post("/signout")
def signout(request: Request, db: SessionDep, user: Reader) -> Response:
    record_audit(db, user.who, "signout", "user", str(user.id), client_ip(request))
    db.commit()
    response = RedirectResponse("/signin?reason=signed_out", status_code=303)
    clear_session_cookie(request, response)
    request.state.session = None
    return response
