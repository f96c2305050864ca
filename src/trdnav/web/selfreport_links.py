"""Self-report links: single-use, expiring questionnaire links a patient opens without an account.

A link is a ``selfreport_links`` row whose ``id`` is random (``secrets.token_urlsafe``); the URL
handed to the patient is ``/r/<token>``, where the token is that id signed with the app's secret
key under a salt of its own (:data:`LINK_SALT`), so a token cannot be forged, guessed from the id
alone, or swapped with a session cookie (which uses another salt and another payload). Whether a
link may still be used is decided on the server from its row, never from the token: used
(``used_at``), revoked, or past ``expires_at``.

A revoked link keeps its row (nothing is deleted): revoking sets ``expires_at`` to ``created_at``,
which no link created through the form can have (its lifetime is at least one hour).

The patient's form carries a per-render *form nonce* (:func:`form_nonce`): the link id and a
random value, signed under another salt. A submission must bring back a nonce made for the same
link; see the routes module for why this, and not the session's CSRF token, guards the form.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

LINK_SALT = "trdnav-selfreport-link"
FORM_SALT = "trdnav-selfreport-form"
LINK_ID_BYTES = 24  # 32 URL-safe characters, 192 random bits
MAX_LINK_HOURS = 24 * 30
FORM_NONCE_MAX_SECONDS = MAX_LINK_HOURS * 3600
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class LinkStatus(StrEnum):
    UNUSED = "unused"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


def new_link_id() -> str:
    return secrets.token_urlsafe(LINK_ID_BYTES)


def who(link_id: str) -> str:
    """The name a submission is audited under: ``selfreport:`` and the first 8 characters."""
    return f"selfreport:{link_id[:8]}"


def sign_link(secret_key: str, link_id: str) -> str:
    return URLSafeSerializer(secret_key, salt=LINK_SALT).dumps(link_id)


def verify_link(secret_key: str, token: str) -> str | None:
    """The link id a token was signed for, or ``None`` when it is tampered with or malformed."""
    if len(token) > 200:
        return None
    try:
        value: Any = URLSafeSerializer(secret_key, salt=LINK_SALT).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) and _LINK_ID.match(value) else None


def form_nonce(secret_key: str, link_id: str) -> str:
    """A fresh nonce for one rendering of the link's form."""
    serializer = URLSafeTimedSerializer(secret_key, salt=FORM_SALT)
    return serializer.dumps([link_id, secrets.token_urlsafe(12)])


def nonce_matches(secret_key: str, nonce: str | None, link_id: str) -> bool:
    """Whether ``nonce`` was made by this server for the form of ``link_id``."""
    if not nonce or len(nonce) > 300:
        return False
    serializer = URLSafeTimedSerializer(secret_key, salt=FORM_SALT)
    try:
        value: Any = serializer.loads(nonce, max_age=FORM_NONCE_MAX_SECONDS)
    except BadSignature:
        return False
    return isinstance(value, list) and len(value) == 2 and value[0] == link_id


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive: they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def expiry(created_at: datetime, hours: int) -> datetime:
    return created_at + timedelta(hours=hours)


def link_status(
    created_at: datetime, expires_at: datetime, used_at: datetime | None, now: datetime
) -> LinkStatus:
    if used_at is not None:
        return LinkStatus.USED
    if as_utc(expires_at) <= as_utc(created_at):
        return LinkStatus.REVOKED
    if as_utc(now) >= as_utc(expires_at):
        return LinkStatus.EXPIRED
    return LinkStatus.UNUSED


def link_url(base_url: str, token: str) -> str:
    """The absolute address handed to the patient."""
    return f"{base_url.rstrip('/')}/r/{token}"


_PHONE = re.compile(r"\d[\d -]*\d|\d")


def dial_number(contact: str) -> str | None:
    """The first number in a crisis line's contact text, as digits for a ``tel:`` link."""
    found = _PHONE.search(contact)
    return re.sub(r"\D", "", found.group()) if found else None
