"""Request dependencies: the database session, the signed-in user, roles, CSRF, today.

Every route names the roles it admits with one of the aliases below (``Reader``, ``Writer``,
``Admin``); ``tests/web/test_roles.py`` checks every route of the app against its table.

The user is read from the database on every request — by the session cookie's token
(:mod:`trdnav.web.sessions`) or the bearer token — so a deactivated user, a changed role, a
revoked session or a changed password applies at the next request. A user whose role requires a
second factor they have not set up may use only the enrolment pages (``Enrolling``) and sign-out
until they have: every other page sends them to enrolment (``SecondFactorNeededError``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.web.security import (
    BACKGROUND_HEADER,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    csrf_matches,
    token_digest,
)
from trdnav.web.sessions import load_session, touch
from trdnav.web.settings import WebSettings
from trdnav.web.totp import active_totp, totp_required

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
READ_ROLES = ("admin", "clinician", "read_only")
WRITE_ROLES = ("admin", "clinician")
ADMIN_ROLES = ("admin",)


class NotSignedInError(Exception):
    """No valid session or token (``reason``: ``""``, ``idle``, ``expired``, ``invalid``,
    ``revoked``)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason or "sign-in required")


class ForbiddenError(Exception):
    """Signed in, but the role does not admit this action (or a CSRF token is missing)."""


class SecondFactorNeededError(Exception):
    """Signed in with a password, but the role requires a second factor not yet set up."""


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    via_token: bool

    @property
    def who(self) -> str:
        """The name written into audit events."""
        return self.username

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES


def get_settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def get_knowledge(request: Request) -> Knowledge:
    kb: Knowledge = request.app.state.knowledge
    return kb


def get_today(request: Request) -> date:
    settings = get_settings(request)
    return settings.today or date.today()


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        try:
            yield session
        finally:
            session.rollback()


SettingsDep = Annotated[WebSettings, Depends(get_settings)]
KnowledgeDep = Annotated[Knowledge, Depends(get_knowledge)]
TodayDep = Annotated[date, Depends(get_today)]
SessionDep = Annotated[Session, Depends(get_db)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _user_from_token(db: Session, token: str) -> CurrentUser | None:
    row = db.execute(
        select(m.User)
        .join(m.ApiToken, m.ApiToken.user_id == m.User.id)
        .where(m.ApiToken.token_sha256 == token_digest(token), m.ApiToken.revoked.is_(False))
    ).scalar_one_or_none()
    if row is None or not row.active:
        return None
    return CurrentUser(row.id, row.username, row.role, via_token=True)


def get_current_user(request: Request, db: SessionDep) -> CurrentUser:
    token = _bearer(request)
    if token is not None:
        user = _user_from_token(db, token)
        if user is None:
            raise NotSignedInError("invalid")
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotSignedInError("")
    settings = get_settings(request)
    found, reason = load_session(
        db, cookie, settings.idle_timeout_minutes * 60, settings.session_max_hours * 3600
    )
    if found is None:
        raise NotSignedInError(reason)
    data, row = found
    request.state.session = data
    # a page's own polling is not activity: it must not keep an unattended screen signed in
    if request.headers.get(BACKGROUND_HEADER) is None:
        touch(db, data)
    return CurrentUser(row.id, row.username, row.role, via_token=False)


async def check_csrf(request: Request) -> None:
    """State-changing requests made with the session cookie must carry its CSRF token."""
    if request.method not in UNSAFE_METHODS or _bearer(request) is not None:
        return
    data = getattr(request.state, "session", None)
    if data is None:
        return  # get_current_user refuses it (sign-in itself is checked in its route)
    given = request.headers.get(CSRF_HEADER)
    form = None
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_matches(data.csrf, given):
        if form is not None:
            await form.close()  # a refused upload's temporary files are closed at once
        raise ForbiddenError("the form's security token is missing or out of date")


def needs_enrolment(db: Session, settings: WebSettings, user: CurrentUser) -> bool:
    """A session user whose role requires a second factor they have not set up."""
    if user.via_token or not totp_required(
        user.role, settings.require_totp_for_admins, settings.require_totp_for_clinicians
    ):
        return False
    return active_totp(db, user.id) is None


def _role(*roles: str, enrolling: bool = False):  # type: ignore[no-untyped-def]
    def dependency(
        request: Request,
        db: SessionDep,
        settings: SettingsDep,
        user: Annotated[CurrentUser, Depends(get_current_user)],
        _csrf: Annotated[None, Depends(check_csrf)],
    ) -> CurrentUser:
        if user.role not in roles:
            raise ForbiddenError(f"the {user.role} role cannot do this")
        request.state.user = user
        if not enrolling and needs_enrolment(db, settings, user):
            raise SecondFactorNeededError
        return user

    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


Reader = Annotated[CurrentUser, Depends(_role(*READ_ROLES))]
Writer = Annotated[CurrentUser, Depends(_role(*WRITE_ROLES))]
Admin = Annotated[CurrentUser, Depends(_role(*ADMIN_ROLES))]
# any role, also before a required second factor is set up: the enrolment pages and sign-out
Enrolling = Annotated[CurrentUser, Depends(_role(*READ_ROLES, enrolling=True))]
