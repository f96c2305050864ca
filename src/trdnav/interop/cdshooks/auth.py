"""Trusting CDS clients: verify the JWT every CDS Hooks call carries (CDS Hooks 2.0,
"Trusting CDS Clients"), with joserfc.

A call is accepted only when every check passes, in this order (the first failure names itself):

1. an ``Authorization: Bearer`` header with a compact JWS of at most 16 KB (``missing_token``,
   ``malformed_token``);
2. header ``alg`` among the configured asymmetric algorithms (ES384 and RS384 by default; never
   ``none`` or HMAC), ``typ`` JWT when present, a ``kid`` (``unsupported_algorithm``,
   ``malformed_token``);
3. ``iss`` on the allow-list, and ``jku``, when present, on that issuer's allow-list
   (``untrusted_issuer``, ``untrusted_jku``);
4. the signature, with the key of that ``kid`` in the issuer's JWK Set — fetched from its
   ``jwks_url`` (or ``jku``) and cached, fetched again once when a ``kid`` is unknown
   (``bad_signature``, ``unknown_key``, ``jwks_unavailable``);
5. ``aud`` equal to (or containing) the URL of the service being called, ``exp`` in the future,
   ``iat`` and ``jti`` present (``wrong_audience``, ``expired_token``, ``missing_claim``);
6. the ``jti`` never seen before from that issuer while the token is valid (``replayed_token``).

Every failure is a :class:`CdsAuthError` (HTTP 401). The replay store is in memory, per process
(:class:`ReplayStore`), or a SQLite file shared by the processes of one machine
(:class:`SqliteReplayStore`, setting ``replay_store``): ``trdnav cds serve --workers N`` uses one so
that a token spent on one worker is refused by every other. When several
workers must see each other's ``jti``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from trdnav.errors import InputError, Problem
from trdnav.interop.cdshooks.config import CdsSettings, TrustedIssuer
from trdnav.interop.cdshooks.errors import CdsAuthError

MAX_TOKEN_BYTES = 16_384
JWKS_RETRY_SECONDS = 10.0  # at most one re-fetch per URL in this time on an unknown kid

Fetch = Callable[[str, float], Any]  # (url, timeout seconds) -> the decoded JSON document


def fetch_json(url: str, timeout: float) -> Any:
    """GET a JSON document (a JWK Set) with a timeout."""
    with httpx2.Client(timeout=timeout, follow_redirects=False) as client:
        response = client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()


class ReplayStore:
    """``(iss, jti)`` pairs seen, each kept until its token expires (plus the leeway)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._next_purge = 0.0

    def first_use(self, iss: str, jti: str, until: float) -> bool:
        """Record the pair; False when it was already recorded and has not expired."""
        now = self._clock()
        with self._lock:
            if now >= self._next_purge:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
                self._next_purge = now + 30
            key = (iss, jti)
            known = self._seen.get(key)
            if known is not None and known > now:
                return False
            self._seen[key] = until
            return True

    def __len__(self) -> int:
        return len(self._seen)


class SqliteReplayStore(ReplayStore):
    """The ``(iss, jti)`` pairs in a SQLite file (WAL), so that the worker processes of one
    service share them: a token is accepted once, whichever worker sees it first."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self.path = path
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a crash may forget recent jtis: they
        # expire within minutes anyway, and a restart also forgets the in-memory store's
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jti (iss TEXT NOT NULL, jti TEXT NOT NULL, "
            "until REAL NOT NULL, PRIMARY KEY (iss, jti)) WITHOUT ROWID"
        )

    def first_use(self, iss: str, jti: str, until: float) -> bool:
        now = self._clock()
        with self._lock:
            if now >= self._next_purge:
                self._db.execute("DELETE FROM jti WHERE until <= ?", (now,))
                self._next_purge = now + 30
            # a new pair is inserted; a known one only when it had expired (rowcount 1 either way)
            cursor = self._db.execute(
                "INSERT INTO jti (iss, jti, until) VALUES (?, ?, ?) ON CONFLICT (iss, jti) "
                "DO UPDATE SET until = excluded.until WHERE jti.until <= ?",
                (iss, jti, until, now),
            )
            return cursor.rowcount == 1

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM jti WHERE until > ?", (self._clock(),))
            return int(row.fetchone()[0])


def replay_store_for(settings: CdsSettings, clock: Callable[[], float] = time.time) -> ReplayStore:
    """The store the settings name: a SQLite file (``replay_store``), else in memory."""
    if settings.replay_store is None:
        return ReplayStore(clock)
    try:
        return SqliteReplayStore(Path(settings.replay_store), clock)
    except sqlite3.Error as exc:
        raise InputError(
            [Problem("replay_store", "unusable", f"cannot open {settings.replay_store}: {exc}")]
        ) from None


@dataclass
class _CachedSet:
    keys: KeySet
    fetched: float


class JwksNotCached(Exception):
    """Raised by a verification told not to fetch keys when the issuer's keys must be fetched."""


class JwksCache:
    """JWK Sets by URL (or an issuer's inline set), kept ``jwks_cache_seconds``."""

    def __init__(self, settings: CdsSettings, fetch: Fetch = fetch_json) -> None:
        self._settings = settings
        self._fetch = fetch
        self._sets: dict[str, _CachedSet] = {}
        self._lock = threading.Lock()

    def _load(self, url: str) -> _CachedSet:
        try:
            data = self._fetch(url, self._settings.jwks_timeout_seconds)
            keys = KeySet.import_key_set(data)
        except (httpx2.HTTPError, ValueError, TypeError, KeyError, jose_errors.JoseError):
            raise CdsAuthError(
                "jwks_unavailable", f"the issuer's JWK Set could not be read from {url}"
            ) from None
        entry = _CachedSet(keys, time.monotonic())
        with self._lock:
            self._sets[url] = entry
        return entry

    def key_set(
        self, issuer: TrustedIssuer, url: str | None, kid: str, *, fetch: bool = True
    ) -> KeySet:
        """The issuer's keys; with ``fetch=False``, :class:`JwksNotCached` instead of a fetch."""
        if url is None:
            return self._inline(issuer)
        now = time.monotonic()
        with self._lock:
            entry = self._sets.get(url)
        stale = entry is None or now - entry.fetched > self._settings.jwks_cache_seconds
        if not stale and entry is not None and not _has_kid(entry.keys, kid):
            stale = now - entry.fetched > JWKS_RETRY_SECONDS  # the issuer may have rotated keys
        if stale and not fetch:
            raise JwksNotCached(url)
        if entry is None or stale:
            entry = self._load(url)
        return entry.keys

    def _inline(self, issuer: TrustedIssuer) -> KeySet:
        """An issuer's JWK Set written in the settings (read once)."""
        key = "inline:" + issuer.iss
        with self._lock:
            entry = self._sets.get(key)
        if entry is not None:
            return entry.keys
        if issuer.jwks is None:
            raise CdsAuthError("jwks_unavailable", "no JWK Set is configured for this issuer")
        try:
            keys = KeySet.import_key_set(issuer.jwks)  # type: ignore[arg-type]
        except (ValueError, TypeError, KeyError, jose_errors.JoseError):
            raise CdsAuthError(
                "jwks_unavailable", "the issuer's configured JWK Set is invalid"
            ) from None
        with self._lock:
            self._sets[key] = _CachedSet(keys, time.monotonic())
        return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError(
            "missing_token", "send the EHR's signed JWT as 'Authorization: Bearer <JWT>'"
        )
    return token.strip()


class JwtVerifier:
    def __init__(
        self,
        settings: CdsSettings,
        fetch: Fetch = fetch_json,
        replay: ReplayStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.jwks = JwksCache(settings, fetch)
        self.replay = replay or replay_store_for(settings, clock)
        self._clock = clock

    def verify(
        self,
        authorization: str | None,
        audience: str | tuple[str, ...],
        *,
        fetch_keys: bool = True,
    ) -> dict[str, Any]:
        """The verified claims of the caller's JWT for a call of ``audience`` (the URL called;
        several when more than one is acceptable). With ``fetch_keys=False`` nothing is fetched:
        :class:`JwksNotCached` (before any claim is checked or a jti is spent) when it would be."""
        token = bearer_token(authorization)
        if len(token) > MAX_TOKEN_BYTES:
            raise CdsAuthError("malformed_token", "the JWT is longer than 16 KB")
        header, unverified = _peek(token)
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            raise CdsAuthError(
                "unsupported_algorithm",
                f"JWT alg {alg!r} is not accepted; expected one of "
                f"{', '.join(self.settings.algorithms)}",
            )
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            raise CdsAuthError("malformed_token", "JWT header typ must be 'JWT'")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise CdsAuthError("malformed_token", "the JWT header has no kid")
        iss = unverified.get("iss")
        issuer = self.settings.issuer(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise CdsAuthError("untrusted_issuer", f"issuer {iss!r} is not on the allow-list")
        jku = header.get("jku")
        if jku is not None and jku not in issuer.allowed_jku:
            raise CdsAuthError("untrusted_jku", f"jku {jku!r} is not allowed for this issuer")
        url = jku if isinstance(jku, str) else issuer.jwks_url
        keys = self.jwks.key_set(issuer, url, kid, fetch=fetch_keys)
        if not _has_kid(keys, kid):
            raise CdsAuthError("unknown_key", f"no key {kid!r} in the issuer's JWK Set")
        try:
            verified = jwt.decode(token, keys, algorithms=list(self.settings.algorithms))
        except jose_errors.BadSignatureError:
            raise CdsAuthError("bad_signature", "the JWT's signature does not verify") from None
        except (jose_errors.JoseError, ValueError, TypeError):
            raise CdsAuthError(
                "bad_signature", "the JWT could not be verified with the issuer's keys"
            ) from None
        claims = dict(verified.claims)
        self._check_claims(claims, audience, issuer.iss)
        return claims

    def _check_claims(
        self, claims: dict[str, Any], audience: str | tuple[str, ...], iss: str
    ) -> None:
        for name in ("iss", "aud", "exp", "iat", "jti"):
            if name not in claims:
                raise CdsAuthError("missing_claim", f"the JWT has no {name} claim")
        aud = claims["aud"]
        auds = aud if isinstance(aud, list) else [aud]
        wanted = (audience,) if isinstance(audience, str) else audience
        if not any(a in auds for a in wanted):
            raise CdsAuthError(
                "wrong_audience", f"aud must be this service's URL, {wanted[0]!r}; got {aud!r}"
            )
        exp, iat, jti = claims["exp"], claims["iat"], claims["jti"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise CdsAuthError("malformed_token", "exp must be a number of seconds")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise CdsAuthError("malformed_token", "iat must be a number of seconds")
        if not isinstance(jti, str) or not jti:
            raise CdsAuthError("malformed_token", "jti must be a non-empty string")
        now = self._clock()
        leeway = self.settings.leeway_seconds
        if exp + leeway <= now:
            raise CdsAuthError("expired_token", "the JWT has expired (exp is in the past)")
        if iat - leeway > now:
            raise CdsAuthError("malformed_token", "the JWT was issued in the future (iat)")
        if not self.replay.first_use(iss, jti, float(exp) + leeway):
            raise CdsAuthError("replayed_token", "this JWT (jti) was already used")


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload before verification (to choose the issuer's keys)."""
    try:
        obj = extract_compact(token.encode("ascii"))
        header = dict(obj.headers())
        payload = json.loads(obj.payload)
    except (jose_errors.JoseError, ValueError, TypeError, UnicodeError):
        raise CdsAuthError("malformed_token", "the bearer token is not a compact JWS") from None
    if not isinstance(payload, dict):
        raise CdsAuthError("malformed_token", "the JWT payload is not a JSON object")
    return header, payload
