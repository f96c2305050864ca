"""Passwords, sessions, CSRF, sign-in throttling, security headers, redirects, settings, users.

Sessions are driven through their clock by backdating their rows in the database (an old
``last_seen`` or ``created_at``), never by sleeping. (Revocation, rotation and the second factor:
``test_sessions.py`` and ``test_totp.py``.)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import ValidationError
from sqlalchemy import Engine, select, update

from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker
from trdnav.web.app import HERE as WEB_DIR
from trdnav.web.app import create_app
from trdnav.web.routes.auth import SIGNIN_COOKIE, SIGNIN_TOKEN_SECONDS
from trdnav.web.security import BACKGROUND_HEADER, CONTENT_SECURITY_POLICY, SESSION_COOKIE
from trdnav.web.sessions import digest, load_session
from trdnav.web.settings import DEV_SECRET, WebSettings

from .conftest import PASSWORD, make_settings, signed_in, signin_token, store_examples
from .test_roles import (
    EHR,
    POLICY,
    PUBLIC,
    UNSAFE,
    World,
    app_routes,
    build_world,
    make_app,
    new_session,
    session_for,
)


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    application = make_app(db_url, kb)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign-ins without argon2's deliberate cost, where the counting, not the hash, is tested."""
    from trdnav.web.routes import auth

    monkeypatch.setattr(auth, "verify_password", lambda stored, pw: bool(stored) and pw == PASSWORD)
    monkeypatch.setattr(auth, "needs_rehash", lambda _stored: False)


# --- helpers ----------------------------------------------------------------------------------


def set_cookies(response: Any, name: str) -> list[str]:
    """The Set-Cookie headers of ``response`` for cookie ``name``."""
    return [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]


def attributes(set_cookie: str) -> dict[str, str]:
    parts = [p.strip() for p in set_cookie.split(";")[1:]]
    return {p.partition("=")[0].lower(): p.partition("=")[2] for p in parts}


def user_id(app: FastAPI, username: str) -> int:
    with make_sessionmaker(app.state.engine)() as db:
        uid = db.scalar(select(m.User.id).where(m.User.username == username))
    assert uid is not None
    return uid


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def cookie_for(app: FastAPI, username: str, *, started: float, last_seen: float) -> str:
    """A session of ``username`` that began at ``started`` and was last used at ``last_seen``."""
    token, _csrf = new_session(app, username)
    set_session_times(app, token, started=started, last_seen=last_seen)
    return token


def set_session_times(app: FastAPI, token: str, *, started: float, last_seen: float) -> None:
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(
            update(m.UserSession)
            .where(m.UserSession.token_sha256 == digest(token))
            .values(created_at=at(started), last_seen=at(last_seen))
        )
        db.commit()


def last_seen_of(app: FastAPI, token: str) -> tuple[float, float]:
    """(created, last seen) of the session of ``token``, as timestamps."""
    with make_sessionmaker(app.state.engine)() as db:
        row = db.scalar(select(m.UserSession).where(m.UserSession.token_sha256 == digest(token)))
        assert row is not None
        return (
            row.created_at.replace(tzinfo=UTC).timestamp(),
            row.last_seen.replace(tzinfo=UTC).timestamp(),
        )


def database_rows(
    engine: Engine, *, without: frozenset[str] = frozenset()
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but ``without``): what "nothing was stored" is compared
    against."""
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in m.Base.metadata.sorted_tables
            if t.name not in without
        }


def audit_actions(app: FastAPI, action: str) -> list[tuple[str, str | None]]:
    """(who, entity id) of every audit event with ``action``."""
    with make_sessionmaker(app.state.engine)() as db:
        query = select(m.AuditEvent.who, m.AuditEvent.entity_id).where(
            m.AuditEvent.action == action
        )
        return [(who, eid) for who, eid in db.execute(query.order_by(m.AuditEvent.id))]


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    form = {"username": username, "password": password, "csrf_token": signin_token(client)}
    return client.post("/signin", data=form)


# --- passwords --------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_and_old_parameters_are_upgraded(
    app: FastAPI, client: TestClient
) -> None:
    csrf = session_for(app, client, "admin")
    new_password = "a brand new passphrase"
    created = client.post(
        "/admin/users",
        data={
            "username": "nurse",
            "role": "clinician",
            "password": new_password,
            "csrf_token": csrf,
        },
    )
    assert created.status_code == 303
    with make_sessionmaker(app.state.engine)() as db:
        users = {u.username: u.password_hash for u in db.scalars(select(m.User))}
    assert set(users) == {"admin", "clinician", "reader", "nurse"}
    for name, stored in users.items():
        assert stored.startswith("$argon2id$"), name
        assert PASSWORD not in stored and new_password not in stored
    assert PasswordHasher().verify(users["nurse"], new_password)
    # a hash made with older (weaker) parameters is upgraded at the next sign-in
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(update(m.User).where(m.User.username == "reader").values(password_hash=weak))
        db.commit()
    assert sign_in(client, "reader").status_code == 303
    with make_sessionmaker(app.state.engine)() as db:
        upgraded = db.scalar(select(m.User.password_hash).where(m.User.username == "reader"))
    assert upgraded != weak and upgraded is not None and upgraded.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(upgraded)


# --- the session cookie -----------------------------------------------------------------------


def test_the_session_cookie_is_httponly_samesite_lax_and_secure_only_over_https(
    app: FastAPI, client: TestClient
) -> None:
    (cookie,) = set_cookies(sign_in(client, "clinician"), SESSION_COOKIE)
    attrs = attributes(cookie)
    assert "httponly" in attrs and attrs["samesite"].lower() == "lax" and attrs["path"] == "/"
    assert "secure" not in attrs  # a Secure cookie would never come back over plain http
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as https:
        (cookie,) = set_cookies(sign_in(https, "clinician"), SESSION_COOKIE)
        attrs = attributes(cookie)
        assert "secure" in attrs and "httponly" in attrs and attrs["samesite"].lower() == "lax"
        # the cookie holds only the session's token: later responses never set it again
        page = https.get("/patients")
        assert page.status_code == 200
        assert not set_cookies(page, SESSION_COOKIE)
        assert page.headers["strict-transport-security"].startswith("max-age=")


# --- idle sign-out and absolute expiry --------------------------------------------------------


def test_a_stored_session_is_refused_idle_or_old_beyond_its_limits_and_not_before(
    app: FastAPI,
) -> None:
    idle = app.state.settings.idle_timeout_minutes * 60
    longest = app.state.settings.session_max_hours * 3600
    t0 = time.time() - 10 * longest
    token, _csrf = new_session(app, "clinician", started=at(t0))
    with make_sessionmaker(app.state.engine)() as db:

        def load(now: float) -> tuple[bool, str]:
            found, reason = load_session(db, token, idle, longest, now=at(now))
            return found is not None, reason

        assert load(t0 + idle - 1) == (True, "")
        assert load(t0 + idle + 1) == (False, "idle")
    set_session_times(app, token, started=t0, last_seen=t0 + longest - 10)
    with make_sessionmaker(app.state.engine)() as db:
        assert load(t0 + longest - 1) == (True, "")
        assert load(t0 + longest + 1) == (False, "expired")
        assert load_session(db, token + "x", idle, longest, now=at(t0)) == (None, "invalid")


def test_an_idle_session_is_signed_out_and_sent_to_signin_with_reason_idle(
    app: FastAPI, client: TestClient
) -> None:
    now = time.time()
    idle = app.state.settings.idle_timeout_minutes * 60
    cookie = cookie_for(app, "clinician", started=now - idle - 60, last_seen=now - idle - 5)
    client.cookies.set(SESSION_COOKIE, cookie)
    response = client.get("/patients")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?reason=idle"
    (cleared,) = set_cookies(response, SESSION_COOKIE)
    assert attributes(cleared).get("max-age") == "0"
    notice = client.get(response.headers["location"])
    assert "signed out after a period without activity" in notice.text
    # an htmx request (a poll, a search) is told where to go instead
    client.cookies.set(SESSION_COOKIE, cookie)
    response = client.get("/patients", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["hx-redirect"] == "/signin?reason=idle"


def test_activity_just_inside_the_idle_timeout_keeps_the_session_and_renews_it(
    app: FastAPI, client: TestClient
) -> None:
    now = time.time()
    idle = app.state.settings.idle_timeout_minutes * 60
    started = now - idle - 600
    client.cookies.set(
        SESSION_COOKIE, cookie_for(app, "clinician", started=started, last_seen=now - idle + 30)
    )
    response = client.get("/patients")
    assert response.status_code == 200
    token = client.cookies[SESSION_COOKIE]
    created, last_seen = last_seen_of(app, token)
    assert last_seen >= now - 1  # the request counted as activity
    assert abs(created - started) < 1  # but the session is no younger


def test_a_pages_own_polling_does_not_keep_an_unattended_session_alive(
    app: FastAPI, client: TestClient
) -> None:
    now = time.time()
    idle = app.state.settings.idle_timeout_minutes * 60
    nearly_idle = cookie_for(app, "clinician", started=now - idle, last_seen=now - idle + 30)
    client.cookies.set(SESSION_COOKIE, nearly_idle)
    poll = {"HX-Request": "true", BACKGROUND_HEADER: "poll"}
    polled = client.get("/patients", headers=poll)
    assert polled.status_code == 200
    # the session was not renewed
    assert last_seen_of(app, nearly_idle)[1] == pytest.approx(now - idle + 30, abs=1)
    # once it idles out, the next poll is signed out
    set_session_times(app, nearly_idle, started=now - idle, last_seen=now - idle - 1)
    signed_out = client.get("/patients", headers=poll)
    assert signed_out.status_code == 204
    assert signed_out.headers["hx-redirect"] == "/signin?reason=idle"
    # a request the user made is activity
    client.cookies.set(SESSION_COOKIE, nearly_idle)
    set_session_times(app, nearly_idle, started=now - idle, last_seen=now - idle + 30)
    used = client.get("/patients", headers={"HX-Request": "true"})
    assert used.status_code == 200
    assert last_seen_of(app, nearly_idle)[1] >= now - 1
    # and the page script marks exactly its polls (requests without a triggering event)
    script = (WEB_DIR / "static" / "js" / "app.js").read_text(encoding="utf-8")
    assert f'headers["{BACKGROUND_HEADER}"]' in script and "triggeringEvent" in script


def test_a_session_too_old_or_unknown_to_the_database_is_refused_even_when_active(
    app: FastAPI, client: TestClient
) -> None:
    now = time.time()
    max_age = app.state.settings.session_max_hours * 3600
    for cookie in (
        cookie_for(app, "clinician", started=now - max_age - 5, last_seen=now - 5),
        "a-token-the-server-never-gave-" + "y" * 20,
    ):
        client.cookies.set(SESSION_COOKIE, cookie)
        response = client.get("/patients")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")
    client.cookies.set(
        SESSION_COOKIE, cookie_for(app, "clinician", started=now - max_age + 60, last_seen=now - 5)
    )
    assert client.get("/patients").status_code == 200  # a minute younger: still a session


# --- CSRF -------------------------------------------------------------------------------------


@pytest.fixture
def world(app: FastAPI, db_url: str, kb: Knowledge) -> World:
    return build_world(app, db_url, kb)


def session_routes() -> list[tuple[str, str]]:
    """Every state-changing route used with the session cookie (sign-in has its own test)."""
    # public routes and the CDS hooks (an EHR's JWT, never a session cookie) carry no CSRF token
    return sorted(k for k, roles in POLICY.items() if k[0] in UNSAFE and roles not in (PUBLIC, EHR))


def test_every_unsafe_route_refuses_a_missing_or_wrong_csrf_token_and_stores_nothing(
    app: FastAPI, world: World
) -> None:
    routes = session_routes()
    assert ("POST", "/admin/users") in routes and len(routes) >= 10
    other_session_token = world.session_cookie("admin")[1]
    # every request below is made with a fresh session (a row of its own): sessions aside,
    # nothing may change
    sessions = frozenset({"user_sessions"})
    before = database_rows(app.state.engine, without=sessions)
    problems = []
    for method, path in routes:
        role = "admin"  # admitted everywhere but the public routes
        attempts = {
            "no token": world.request(method, path, role, csrf=None, data={"x": "1"}),
            "wrong field": world.request(
                method, path, role, csrf=None, data={"csrf_token": other_session_token}
            ),
            "wrong header": world.request(method, path, role, csrf=other_session_token),
        }
        for what, response in attempts.items():
            if response.status_code != 403:
                problems.append(f"{method} {path} with {what}: {response.status_code}")
    assert not problems, "\n".join(problems)
    assert database_rows(app.state.engine, without=sessions) == before
    # the control: with the right token the same kind of request does store something
    form = {"username": "nurse", "role": "clinician", "password": "long enough password"}
    assert world.request("POST", "/admin/users", "admin", data=form).status_code == 303
    assert database_rows(app.state.engine)["users"] != before["users"]


def test_the_signin_form_refuses_a_missing_forged_stale_or_mismatched_token(
    app: FastAPI, client: TestClient
) -> None:
    settings = app.state.settings
    creds = {"username": "clinician", "password": PASSWORD}
    before = database_rows(app.state.engine)

    class OldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - SIGNIN_TOKEN_SECONDS - 5

    stale = URLSafeTimedSerializer(settings.secret_key, salt="trdnav-signin", signer=OldSigner)
    forged = URLSafeTimedSerializer("not-the-secret-" + "z" * 40, salt="trdnav-signin")
    cases: dict[str, tuple[str | None, str | None]] = {
        "no token, no cookie": (None, None),
        "token but no cookie (a cross-site post)": (None, signin_token(client)),
        "cookie and token differ": ("first", "second"),
        "forged, but equal": (forged.dumps("x"), forged.dumps("x")),
        "stale, but equal": (stale.dumps("x"), stale.dumps("x")),
    }
    for what, (cookie, field) in cases.items():
        client.cookies.clear()
        if cookie is not None:
            client.cookies.set(SIGNIN_COOKIE, cookie, path="/signin")
        data = creds if field is None else {**creds, "csrf_token": field}
        response = client.post("/signin", data=data)
        assert response.status_code == 403, what
        assert "did not come from this site" in response.text
        assert not set_cookies(response, SESSION_COOKIE), what
    # nothing was checked: no failed sign-in counted, no audit event, no session
    assert database_rows(app.state.engine) == before


def test_the_signin_cookie_is_short_lived_httponly_samesite_strict_and_cleared_on_success(
    app: FastAPI, client: TestClient
) -> None:
    page = client.get("/signin")
    (cookie,) = set_cookies(page, SIGNIN_COOKIE)
    attrs = attributes(cookie)
    assert "httponly" in attrs and attrs["samesite"].lower() == "strict"
    assert attrs["path"] == "/signin" and int(attrs["max-age"]) == SIGNIN_TOKEN_SECONDS <= 3600
    token = cookie.split(";")[0].split("=", 1)[1]
    assert f'name="csrf_token" value="{token}"' in page.text
    response = client.post(
        "/signin", data={"username": "clinician", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    (cleared,) = set_cookies(response, SIGNIN_COOKIE)
    assert attributes(cleared).get("max-age") == "0"
    with TestClient(app, base_url="https://testserver") as https:
        (secure,) = set_cookies(https.get("/signin"), SIGNIN_COOKIE)
        assert "secure" in attributes(secure)


# --- throttling -------------------------------------------------------------------------------


def age_failed_signins(app: FastAPI, minutes: int) -> None:
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(update(m.LoginAttempt).values(at=datetime.now(UTC) - timedelta(minutes=minutes)))
        db.commit()


def test_five_failures_for_a_user_name_block_the_sixth_attempt_until_the_window_passes(
    app: FastAPI, client: TestClient, fast_passwords: None
) -> None:
    settings = app.state.settings
    assert settings.signin_max_failures == 5
    # four failures do not block, and a success clears them: four more still do not
    for _round in range(2):
        for _ in range(4):
            assert sign_in(client, "clinician", "wrong password!").status_code == 401
        assert sign_in(client, "clinician").status_code == 303
        client.cookies.clear()
    for _ in range(5):
        assert sign_in(client, "clinician", "wrong password!").status_code == 401
    blocked = sign_in(client, "clinician")  # the right password
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    assert not set_cookies(blocked, SESSION_COOKIE)
    # another address does not lift it: the user name is throttled wherever it is tried
    with TestClient(app, client=("192.0.2.7", 4000), follow_redirects=False) as elsewhere:
        assert sign_in(elsewhere, "clinician").status_code == 429
    # the window passes
    age_failed_signins(app, settings.signin_window_minutes + 1)
    assert sign_in(client, "clinician").status_code == 303


def test_failures_are_counted_per_address_too(
    db_url: str, kb: Knowledge, app: FastAPI, fast_passwords: None
) -> None:
    # two failures a name, six an address: the same rule as 5 and 15, in fewer attempts
    strict = create_app(make_settings(db_url, signin_max_failures=2), kb)
    try:
        with TestClient(strict, client=("198.51.100.9", 5000), follow_redirects=False) as guesser:
            for i in range(6):
                assert sign_in(guesser, f"guess{i}", "wrong password!").status_code == 401
            # a name never tried before, with its right password, is refused from that address
            assert sign_in(guesser, "reader").status_code == 429
        with TestClient(strict, client=("203.0.113.4", 5000), follow_redirects=False) as other:
            assert sign_in(other, "reader").status_code == 303
    finally:
        strict.state.engine.dispose()


# --- headers ----------------------------------------------------------------------------------


def csp_directives(policy: str) -> dict[str, set[str]]:
    out = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        out[name] = set(sources)
    return out


# served with a policy of their own: a self-contained document, inline styles, no script at all
DOCUMENT_ROUTES = {("GET", "/patients/{patient_id}/summary")}


INLINE = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:", re.I)


def test_every_response_carries_the_security_headers_and_no_page_needs_inline_script(
    app: FastAPI, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trdnav.web.routes import documents

    monkeypatch.setattr(documents, "render_pdf_in_child", lambda _html: b"%PDF-1.7 stand-in")
    problems = []
    gets = sorted({(m_, p) for m_, p, _ in app_routes(app) if m_ == "GET"})
    responses = [
        ((method, path), role, world.request(method, path, role))
        for method, path in gets
        for role in (None, "admin")  # the sign-in redirect, and the page itself
    ]
    world.client.cookies.clear()
    responses.append((("GET", "(unknown)"), None, world.client.get("/no/such/page")))
    assert len(responses) > 40
    expected = {
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }
    for route, role, response in responses:
        h = response.headers
        where = f"{route[0]} {route[1]} as {role or 'anonymous'} ({response.status_code})"
        csp = csp_directives(h.get("content-security-policy", ""))
        script = csp.get("script-src", csp.get("default-src", set()))
        if not csp or "'unsafe-inline'" in script or "'unsafe-eval'" in script:
            problems.append(f"{where}: script policy {script}")
        if csp.get("frame-ancestors") != {"'none'"}:
            problems.append(f"{where}: frame-ancestors {csp.get('frame-ancestors')}")
        for name, value in expected.items():
            if h.get(name) != value:
                problems.append(f"{where}: {name}: {h.get(name)}")
        html = h.get("content-type", "").startswith("text/html")
        if route in DOCUMENT_ROUTES and role is not None:
            # a self-contained document: inline styles, and no script at all
            if csp.get("default-src") != {"'none'"} or "script-src" in csp:
                problems.append(f"{where}: document policy {csp}")
            if "<script" in response.text.lower():
                problems.append(f"{where}: a script in the document")
        elif h.get("content-security-policy") != CONTENT_SECURITY_POLICY:
            problems.append(f"{where}: CSP {h.get('content-security-policy')}")
        elif html and (found := INLINE.search(response.text)):
            problems.append(f"{where}: inline {found.group(0)!r}, which the CSP blocks")
    assert not problems, "\n".join(problems)
    css = world.client.get("/static/css/app.css")
    assert css.status_code == 200 and css.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in css.headers.get("cache-control", "")  # public files may be cached


def test_markup_stored_in_a_record_shows_as_text_on_every_page_of_the_record(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trdnav.web.routes import documents

    monkeypatch.setattr(documents, "render_pdf_in_child", lambda _html: b"%PDF-1.7 stand-in")
    evil = '<img src=x onerror="alert(1)">'
    token = {
        "Authorization": f"Bearer {world.api_tokens['clinician']}",
        "Content-Type": "application/json",
    }
    trial = {
        "type": "medication",
        "drug": "sertraline",
        "start": "2023-01-01",
        "stop": "2023-03-01",
        "doses": [{"from": "2023-01-01", "mg_per_day": 50}],
        "outcome": "no_response",
        "note": evil,
    }
    added = world.client.post(
        "/api/patients/EX10/treatments", content=json.dumps(trial), headers=token
    )
    assert added.status_code == 201, added.text
    index = re.fullmatch(r"treatments\[(\d+)\]", added.json()["item"])
    assert index is not None
    world.samples["index"] = index.group(1)
    medication = {"drug": "sertraline", "note": evil}
    added = world.client.post(
        "/api/patients/EX10/current-medications", content=json.dumps(medication), headers=token
    )
    assert added.status_code == 201, added.text
    pages = sorted(p for (m_, p) in POLICY if m_ == "GET" and "{patient_id}" in p)
    raw = [p for p in pages if evil in world.request("GET", p, "clinician").text]
    assert not raw, f"unescaped markup on {raw}"
    shown = world.request("GET", "/patients/{patient_id}/treatments/{index}/edit", "clinician")
    assert "&lt;img src=x onerror=" in shown.text  # it is there, as text


# --- redirects --------------------------------------------------------------------------------


OFF_SITE = (
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",  # a browser reads "\\" as "/"
    "\\\\evil.example",
    "/\t/evil.example",  # a browser drops the tab
    "https:/evil.example",
    "javascript:alert(1)",
    "evil.example",
)


def test_signin_never_redirects_off_the_site(client: TestClient, fast_passwords: None) -> None:
    for target in OFF_SITE:
        form = {
            "username": "clinician",
            "password": PASSWORD,
            "next": target,
            "csrf_token": signin_token(client),
        }
        response = client.post("/signin", data=form)
        assert response.status_code == 303, target
        assert response.headers["location"] == "/patients", target
        page = client.get("/signin", params={"next": target})
        assert 'name="next" value="/patients"' in page.text, target


def test_signin_returns_to_the_page_asked_for(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10")
    first = client.get("/patients/EX10")
    assert first.headers["location"] == "/signin?next=/patients/EX10"
    page = client.get(first.headers["location"])
    assert 'name="next" value="/patients/EX10"' in page.text
    form = {
        "username": "clinician",
        "password": PASSWORD,
        "next": "/patients/EX10",
        "csrf_token": signin_token(client),
    }
    assert client.post("/signin", data=form).headers["location"] == "/patients/EX10"


# --- settings ---------------------------------------------------------------------------------


def test_the_placeholder_secret_is_refused_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="TRDNAV_SECRET_KEY"):
        WebSettings(secret_key=DEV_SECRET, dev_mode=False)
    with pytest.raises(ValidationError, match="at least 32 characters"):
        WebSettings(secret_key="x" * 31, dev_mode=False)
    assert WebSettings(secret_key="x" * 32, dev_mode=False).secret_key == "x" * 32
    assert WebSettings(secret_key=DEV_SECRET, dev_mode=True).dev_mode


def test_the_environment_must_provide_a_secret_outside_dev_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRDNAV_SECRET_KEY", raising=False)
    monkeypatch.delenv("TRDNAV_DEV", raising=False)
    with pytest.raises(ValidationError, match="TRDNAV_SECRET_KEY"):
        WebSettings.from_env()
    monkeypatch.setenv("TRDNAV_DEV", "1")
    assert WebSettings.from_env().dev_mode
    monkeypatch.delenv("TRDNAV_DEV")
    monkeypatch.setenv("TRDNAV_SECRET_KEY", "k" * 48)
    assert WebSettings.from_env().secret_key == "k" * 48


# --- users ------------------------------------------------------------------------------------


def test_a_deactivated_user_cannot_sign_in_and_their_open_session_and_tokens_stop(
    app: FastAPI, client: TestClient, world: World
) -> None:
    signed_in(client, "clinician")
    assert client.get("/patients").status_code == 200
    clinician = world.user_ids["clinician"]
    with TestClient(app, follow_redirects=False) as admin:
        csrf = session_for(app, admin, "admin")
        done = admin.post(f"/admin/users/{clinician}/deactivate", data={"csrf_token": csrf})
        assert done.status_code == 303
        assert "deactivated" in admin.get(done.headers["location"]).text
    assert audit_actions(app, "user_deactivate") == [("admin", str(clinician))]
    # the open session stops at its next request
    stopped = client.get("/patients")
    assert stopped.status_code == 303 and stopped.headers["location"].startswith("/signin")
    # so does the API token
    token = {"Authorization": f"Bearer {world.api_tokens['clinician']}"}
    assert client.get("/api/patients", headers=token).status_code == 401
    # and the right password no longer signs in
    client.cookies.clear()
    refused = sign_in(client, "clinician")
    assert refused.status_code == 401 and not set_cookies(refused, SESSION_COOKIE)


def test_an_admin_cannot_deactivate_themself_or_an_unknown_user(
    app: FastAPI, client: TestClient
) -> None:
    csrf = session_for(app, client, "admin")
    me = user_id(app, "admin")
    response = client.post(f"/admin/users/{me}/deactivate", data={"csrf_token": csrf})
    assert response.status_code == 409
    assert "cannot deactivate your own account" in response.text
    assert client.get("/admin/users").status_code == 200  # still signed in, still an admin
    response = client.post("/admin/users/999999/deactivate", data={"csrf_token": csrf})
    assert response.status_code == 404 and "no such user" in response.text


def test_a_new_user_needs_a_name_a_known_role_and_a_password_of_12_characters(
    app: FastAPI, client: TestClient
) -> None:
    csrf = session_for(app, client, "admin")
    before = database_rows(app.state.engine)
    cases = {
        "username": {"username": " ", "role": "clinician", "password": "x" * 12},
        "role": {"username": "nurse", "role": "superuser", "password": "x" * 12},
        "password": {"username": "nurse", "role": "clinician", "password": "x" * 11},
    }
    messages = {
        "username": "expected a user name",
        "role": "expected one of Admin, Clinician, Read-only",
        "password": "expected at least 12 characters",
    }
    for field, form in cases.items():
        response = client.post("/admin/users", data={**form, "csrf_token": csrf})
        assert response.status_code == 422, field
        assert f'id="{field}-error">{messages[field]}' in response.text
    duplicate = {"username": "clinician", "role": "admin", "password": "x" * 12}
    response = client.post("/admin/users", data={**duplicate, "csrf_token": csrf})
    assert response.status_code == 422 and "exists already" in response.text
    assert database_rows(app.state.engine) == before
    ok = {"username": "nurse", "role": "read_only", "password": "x" * 12}
    created = client.post("/admin/users", data={**ok, "csrf_token": csrf})
    assert created.status_code == 303
    assert audit_actions(app, "user_create") == [("admin", str(user_id(app, "nurse")))]
    listing = client.get(created.headers["location"]).text
    assert "User nurse was created." in listing and "Read-only" in listing
    # the notice names only a user really there: a crafted link shows nothing
    spoofed = client.get("/admin/users", params={"created": "mallory-was-here"})
    assert "mallory-was-here" not in spoofed.text
    with TestClient(app, follow_redirects=False) as nurse:
        assert sign_in(nurse, "nurse", "x" * 12).status_code == 303
