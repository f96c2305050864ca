"""Browser sessions kept on the server (table ``user_sessions``), so that they can be revoked.

- The cookie holds a random 256-bit token and nothing else; the row is found by the token's
  SHA-256, so the table never holds a token that would sign anyone in.
- A session is refused when revoked (sign-out, "sign out everywhere", an admin disabling the
  user, resetting the password or ending the sessions), when idle for ``idle_seconds``, when older
  than ``max_seconds``, and when the user's password hash changed since it began.
- ``last_seen`` is written only when it moved by at least ``LAST_SEEN_RESOLUTION`` (30 s): a
  session costs one write every 30 s of use, not one per request. A session can therefore be
  refused as idle up to 30 s before the limit (never after it); the pages warn a minute before.
- Expired and revoked rows are deleted at every sign-in (``purge_expired``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from trdnav.storage import models as m

log = logging.getLogger("trdnav.web.sessions")

LAST_SEEN_RESOLUTION = timedelta(seconds=30)
# revoked rows are kept this long, so an admin can see a revocation happened; then purged
REVOKED_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class SessionData:
    """The session of a request: its row id, user, CSRF token and times (UTC)."""

    id: int
    user_id: int
    csrf: str
    started: datetime
    last_seen: datetime


def as_utc(at: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a time zone."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def password_mark(password_hash: str) -> str:
    """What a session keeps of the password it began with: a digest of its hash."""
    return digest(password_hash)


def start_session(
    db: Session,
    user: m.User,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> tuple[str, SessionData]:
    """A new session of ``user`` (flushed, not committed): the cookie's token and the session."""
    at = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    row = m.UserSession(
        token_sha256=digest(token),
        user_id=user.id,
        csrf=secrets.token_urlsafe(32),
        password_sha256=password_mark(user.password_hash),
        created_at=at,
        last_seen=at,
        revoked_at=None,
        user_agent=(user_agent or "")[:200] or None,
        ip=ip,
    )
    db.add(row)
    db.flush()
    return token, SessionData(row.id, user.id, row.csrf, at, at)


def load_session(
    db: Session,
    token: str,
    idle_seconds: int,
    max_seconds: int,
    now: datetime | None = None,
) -> tuple[tuple[SessionData, m.User] | None, str]:
    """The session and its user, and ``""``; or ``None`` and why: ``invalid``, ``idle``,
    ``expired``, ``revoked``."""
    at = now or datetime.now(UTC)
    found = db.execute(
        select(m.UserSession, m.User)
        .join(m.User, m.User.id == m.UserSession.user_id)
        .where(m.UserSession.token_sha256 == digest(token))
    ).one_or_none()
    if found is None:
        return None, "invalid"
    row, user = found
    if row.revoked_at is not None or not user.active:
        return None, "revoked"
    if row.password_sha256 != password_mark(user.password_hash):
        return None, "revoked"
    started, last_seen = as_utc(row.created_at), as_utc(row.last_seen)
    if at - last_seen > timedelta(seconds=idle_seconds):
        return None, "idle"
    if at - started > timedelta(seconds=max_seconds):
        return None, "expired"
    return (SessionData(row.id, user.id, row.csrf, started, last_seen), user), ""


def touch(db: Session, session: SessionData, now: datetime | None = None) -> bool:
    """Record use of ``session`` if ``last_seen`` moved by ``LAST_SEEN_RESOLUTION``; committed.

    Returns whether a write was made. A write that fails (a database busy with other writers) is
    rolled back and skipped: the request goes on, and the next one records the use.
    """
    at = now or datetime.now(UTC)
    if at - session.last_seen < LAST_SEEN_RESOLUTION:
        return False
    try:
        db.execute(update(m.UserSession).where(m.UserSession.id == session.id).values(last_seen=at))
        db.commit()
    except OperationalError as exc:
        db.rollback()
        log.warning("session use not recorded: %s", type(exc).__name__)
        return False
    return True


def revoke_session(db: Session, session_id: int) -> None:
    """End one session (sign-out): its row is deleted. Not committed."""
    db.execute(delete(m.UserSession).where(m.UserSession.id == session_id))


def revoke_user_sessions(db: Session, user_id: int, now: datetime | None = None) -> int:
    """End every open session of ``user_id``; how many were open. Not committed."""
    at = now or datetime.now(UTC)
    result = db.execute(
        update(m.UserSession)
        .where(m.UserSession.user_id == user_id, m.UserSession.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def end_user_sessions(db: Session, who: str, user_id: int, ip: str | None = None) -> int:
    """:func:`revoke_user_sessions`, audited as ``sessions_revoked`` by ``who``. Not committed."""
    from trdnav.storage.repository import record_audit

    ended = revoke_user_sessions(db, user_id)
    record_audit(db, who, "sessions_revoked", "user", str(user_id), ip)
    return ended


def purge_expired(
    db: Session, idle_seconds: int, max_seconds: int, now: datetime | None = None
) -> int:
    """Delete sessions that can no longer be used, and spent pending sign-ins. Not committed."""
    at = now or datetime.now(UTC)
    result = db.execute(
        delete(m.UserSession).where(
            or_(
                m.UserSession.last_seen < at - timedelta(seconds=idle_seconds),
                m.UserSession.created_at < at - timedelta(seconds=max_seconds),
                m.UserSession.revoked_at < at - REVOKED_KEPT,
            )
        )
    )
    db.execute(delete(m.PendingSignin).where(m.PendingSignin.expires_at < at))
    return int(getattr(result, "rowcount", 0) or 0)


def live(idle_seconds: int, max_seconds: int, now: datetime | None = None) -> ColumnElement[bool]:
    """The condition of a session still usable: not revoked, idle nor too old."""
    at = now or datetime.now(UTC)
    return and_(
        m.UserSession.revoked_at.is_(None),
        m.UserSession.last_seen >= at - timedelta(seconds=idle_seconds),
        m.UserSession.created_at >= at - timedelta(seconds=max_seconds),
    )


def open_sessions(
    db: Session, user_id: int, idle_seconds: int, max_seconds: int
) -> list[m.UserSession]:
    """The user's usable sessions (newest first): what the account page lists."""
    query = (
        select(m.UserSession)
        .where(m.UserSession.user_id == user_id, live(idle_seconds, max_seconds))
        .order_by(m.UserSession.created_at.desc())
    )
    return list(db.scalars(query))
