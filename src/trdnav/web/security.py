"""Passwords, CSRF tokens, sign-in throttling and security headers.

- Passwords: argon2id (argon2-cffi defaults), re-hashed on sign-in when the parameters change.
- Sessions (:mod:`trdnav.web.sessions`): the cookie ``trdnav_session`` holds a random token of a
  session kept in the database; HttpOnly, SameSite=Lax, Secure when the request came over TLS. A
  session idle for longer than ``idle_timeout_minutes`` (or older than ``session_max_hours``) is
  signed out; a page's own polling (header ``X-TRD-Background``) is not use.
- CSRF: every state-changing request made with the session cookie must carry the session's token
  (form field ``csrf_token`` or header ``X-CSRF-Token``); API calls with a bearer token need none.
- Throttling: after ``signin_max_failures`` failed sign-ins for one user name or one address within
  ``signin_window_minutes``, sign-in is refused until the window has passed. Failures keep a
  digest of the name typed, never the text (it may be a password typed in the wrong field). A
  wrong second-factor code counts as a failed sign-in of its user.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trdnav.storage import models as m

SESSION_COOKIE = "trdnav_session"
# the short-lived cookie of a sign-in waiting for its second factor (path /signin)
PENDING_COOKIE = "trdnav_pending"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# sent by app.js with requests no user action triggered (htmx polling): they do not count as
# activity, so they never postpone the idle sign-out
BACKGROUND_HEADER = "X-TRD-Background"

_hasher = PasswordHasher()

# the same work for unknown user names as for known ones (no user-name oracle by timing)
_DUMMY_HASH = _hasher.hash("not-a-password")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name_key(username: str) -> str:
    """What a failed sign-in keeps of the name typed: its digest, never the text.

    People type their password into the user-name field by mistake; the throttle only needs to
    recognise the same name again.
    """
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


def signin_blocked(
    session: Session, username: str, ip: str | None, max_failures: int, window_minutes: int
) -> bool:
    """Too many recent failures for this user name, or (3× as many) from this address."""
    since = datetime.now(UTC) - timedelta(minutes=window_minutes)
    recent = select(func.count()).select_from(m.LoginAttempt).where(m.LoginAttempt.at >= since)
    by_user = session.scalar(recent.where(m.LoginAttempt.username == _name_key(username))) or 0
    by_ip = session.scalar(recent.where(m.LoginAttempt.ip == ip)) or 0 if ip else 0
    # an address may try a few user names (a shared clinic computer), but not indefinitely
    return by_user >= max_failures or by_ip >= max_failures * 3


def record_failed_signin(session: Session, username: str, ip: str | None) -> None:
    session.add(m.LoginAttempt(username=_name_key(username), ip=ip, at=datetime.now(UTC)))
    session.commit()


def clear_failed_signins(session: Session, username: str) -> None:
    session.query(m.LoginAttempt).filter(m.LoginAttempt.username == _name_key(username)).delete()
    session.commit()
