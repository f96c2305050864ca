"""Sessions kept on the server: revoked by sign-out, "sign out everywhere" and admins; rotated
at sign-in; the database holds only a digest of the token; the role is read at every request.

A "copied cookie" is the session cookie's value set in a second, unrelated client — what a thief
would do with it. (The idle and absolute limits and the cookie's flags: ``test_security.py``.)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from trdnav.cli_web import create_user
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker
from trdnav.web import security
from trdnav.web.security import SESSION_COOKIE
from trdnav.web.sessions import LAST_SEEN_RESOLUTION, digest

from .conftest import PASSWORD
from .test_roles import make_app, new_session
from .test_security import (
    audit_actions,
    database_rows,
    last_seen_of,
    set_cookies,
    set_session_times,
    sign_in,
    user_id,
)


@functools.cache
def _verified(stored: str | None, password: str) -> bool:
    return security.verify_password(stored, password)


@pytest.fixture(autouse=True)
def verify_each_password_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real argon2 check, done once per (hash, password) in the test session: sessions, not
    hashing, are tested here."""
    from trdnav.web.routes import auth

    monkeypatch.setattr(auth, "verify_password", _verified)


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    application = make_app(db_url, kb)
    yield application
    application.state.engine.dispose()


def browser(app: FastAPI, token: str | None = None) -> TestClient:
    """A client of its own (another computer); with ``token``, holding that session cookie."""
    client = TestClient(app, follow_redirects=False)
    if token is not None:
        client.cookies.set(SESSION_COOKIE, token)
    return client


def signed_in_browser(
    app: FastAPI, username: str, password: str = PASSWORD
) -> tuple[TestClient, str]:
    """A client signed in through the form; (client, its session token)."""
    client = browser(app)
    assert sign_in(client, username, password).status_code == 303
    return client, client.cookies[SESSION_COOKIE]


def works(app: FastAPI, token: str, path: str = "/patients") -> bool:
    """The session of ``token``, used from another computer, still opens ``path``."""
    response = browser(app, token).get(path)
    if response.status_code == 200:
        return True
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    return False


def page_csrf(client: TestClient, path: str = "/account") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    marker = 'data-csrf="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def session_rows(app: FastAPI, username: str) -> list[m.UserSession]:
    with make_sessionmaker(app.state.engine)() as db:
        uid = user_id(app, username)
        return list(db.scalars(select(m.UserSession).where(m.UserSession.user_id == uid)))


# --- rotation and storage -----------------------------------------------------------------------


def test_each_sign_in_gives_a_new_token_and_the_session_held_before_is_dead(
    app: FastAPI,
) -> None:
    client, first = signed_in_browser(app, "clinician")
    assert sign_in(client, "clinician").status_code == 303
    second = client.cookies[SESSION_COOKIE]
    assert second != first
    assert works(app, second) and not works(app, first)
    # a session planted in the browser before sign-in (fixation) is not reused, and ends
    planted, _csrf = new_session(app, "reader")
    victim = browser(app, planted)
    signed = sign_in(victim, "clinician")
    assert signed.status_code == 303
    (set_cookie,) = set_cookies(signed, SESSION_COOKIE)
    fresh = set_cookie.split(";")[0].split("=", 1)[1]
    assert fresh != planted
    assert works(app, fresh) and not works(app, planted)
    assert audit_actions(app, "signin") == [("clinician", str(user_id(app, "clinician")))] * 3


def test_the_database_holds_a_digest_of_the_session_token_never_the_token(app: FastAPI) -> None:
    _client, token = signed_in_browser(app, "clinician")
    assert token not in repr(database_rows(app.state.engine))
    (row,) = session_rows(app, "clinician")
    assert row.token_sha256 == digest(token) and len(token) >= 43  # 256 random bits
    assert row.revoked_at is None and row.user_agent and row.ip


def test_use_is_written_at_most_once_every_30_seconds_and_polls_never(app: FastAPI) -> None:
    client, token = signed_in_browser(app, "clinician")
    created, seen = last_seen_of(app, token)
    for _ in range(5):
        assert client.get("/patients").status_code == 200
    assert last_seen_of(app, token) == (created, seen)  # five requests, no write
    now = time.time()
    older = now - LAST_SEEN_RESOLUTION.total_seconds() - 1
    set_session_times(app, token, started=created, last_seen=older)
    assert client.get("/patients", headers={"X-TRD-Background": "poll"}).status_code == 200
    assert last_seen_of(app, token)[1] == pytest.approx(older, abs=0.01)
    assert client.get("/patients").status_code == 200
    assert last_seen_of(app, token)[1] >= now - 1


def test_sessions_that_can_no_longer_be_used_are_deleted_at_the_next_sign_in(
    app: FastAPI,
) -> None:
    settings = app.state.settings
    now = time.time()
    idle_token, _ = new_session(app, "reader")
    set_session_times(
        app, idle_token, started=now - 3600, last_seen=now - settings.idle_timeout_minutes * 60 - 5
    )
    old_token, _ = new_session(app, "reader")
    set_session_times(
        app, old_token, started=now - settings.session_max_hours * 3600 - 5, last_seen=now
    )
    live_token, _ = new_session(app, "reader")
    assert len(session_rows(app, "reader")) == 3
    signed_in_browser(app, "clinician")
    assert [r.token_sha256 for r in session_rows(app, "reader")] == [digest(live_token)]


# --- revocation ---------------------------------------------------------------------------------


def test_signing_out_deletes_the_session_so_a_copy_of_the_cookie_stops(app: FastAPI) -> None:
    client, token = signed_in_browser(app, "clinician")
    assert works(app, token)
    out = client.post("/signout", data={"csrf_token": page_csrf(client)})
    assert out.status_code == 303 and out.headers["location"] == "/signin?reason=signed_out"
    assert not works(app, token)
    assert session_rows(app, "clinician") == []
    assert audit_actions(app, "signout") == [("clinician", str(user_id(app, "clinician")))]


def test_sign_out_everywhere_ends_every_session_of_the_user_and_a_copied_cookie(
    app: FastAPI,
) -> None:
    laptop, token = signed_in_browser(app, "clinician")
    _desk, other_token = signed_in_browser(app, "clinician")
    _reader, reader_token = signed_in_browser(app, "reader")
    thief = browser(app, token)  # a copy of the laptop's cookie
    assert thief.get("/patients").status_code == 200
    account = laptop.get("/account")
    assert account.text.count("(this browser)") == 1
    assert "Sign out everywhere" in account.text
    done = laptop.post("/account/signout-everywhere", data={"csrf_token": page_csrf(laptop)})
    assert done.status_code == 303
    assert done.headers["location"] == "/signin?reason=signed_out_everywhere"
    assert "signed out on every computer" in laptop.get(done.headers["location"]).text
    refused = thief.get("/patients")
    assert refused.status_code == 303 and refused.headers["location"] == "/signin?reason=revoked"
    assert "Your session was ended" in thief.get(refused.headers["location"]).text
    assert not works(app, other_token)
    assert works(app, reader_token)  # another user's session goes on
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "signout_everywhere") == [("clinician", uid)]
    # the API through the copied cookie is refused as well
    assert thief.get("/api/patients").status_code == 401


def test_sign_out_everywhere_needs_the_sessions_csrf_token(app: FastAPI) -> None:
    client, token = signed_in_browser(app, "clinician")
    refused = client.post("/account/signout-everywhere", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert works(app, token)
    assert audit_actions(app, "signout_everywhere") == []


@pytest.mark.parametrize("action", ["deactivate", "password", "sessions/revoke"])
def test_an_admin_ends_a_users_sessions_by_deactivating_resetting_or_ending_them(
    app: FastAPI, action: str
) -> None:
    _clinician, token = signed_in_browser(app, "clinician")
    admin, admin_token = signed_in_browser(app, "admin")
    thief = browser(app, token)
    assert thief.get("/patients").status_code == 200
    uid = user_id(app, "clinician")
    form = {"csrf_token": page_csrf(admin, "/admin/users")}
    if action == "password":
        form["password"] = "a new password of the clinic"
    done = admin.post(f"/admin/users/{uid}/{action}", data=form)
    assert done.status_code == 303, done.text
    assert "clinician" in admin.get(done.headers["location"]).text
    refused = thief.get("/patients")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")
    assert not works(app, token)
    assert works(app, admin_token)
    assert audit_actions(app, "sessions_revoked") == [("admin", str(uid))]
    if action == "password":
        assert audit_actions(app, "user_password_reset") == [("admin", str(uid))]
        assert sign_in(browser(app), "clinician").status_code == 401
        assert sign_in(browser(app), "clinician", "a new password of the clinic").status_code == 303


def test_a_new_password_shorter_than_12_characters_changes_nothing(app: FastAPI) -> None:
    _clinician, token = signed_in_browser(app, "clinician")
    admin, _ = signed_in_browser(app, "admin")
    uid = user_id(app, "clinician")
    before = database_rows(app.state.engine)
    short = admin.post(
        f"/admin/users/{uid}/password",
        data={"csrf_token": page_csrf(admin, "/admin/users"), "password": "x" * 11},
    )
    assert short.status_code == 422 and "expected at least 12 characters" in short.text
    assert database_rows(app.state.engine) == before
    assert works(app, token)


def test_an_admin_cannot_reset_or_end_their_own_account_from_the_users_page(
    app: FastAPI,
) -> None:
    admin, token = signed_in_browser(app, "admin")
    me = user_id(app, "admin")
    for action in ("password", "totp/reset", "sessions/revoke"):
        form = {"csrf_token": page_csrf(admin, "/admin/users"), "password": "x" * 20}
        refused = admin.post(f"/admin/users/{me}/{action}", data=form)
        assert refused.status_code == 409, action
        assert "your account page" in refused.text
    assert works(app, token)


def test_a_password_changed_on_the_server_ends_the_sessions_begun_before(
    app: FastAPI, db_url: str
) -> None:
    _client, token = signed_in_browser(app, "reader")
    create_user(db_url, "reader", "read_only", "a password set on the server")
    assert not works(app, token)
    _client, fresh = signed_in_browser(app, "reader", "a password set on the server")
    assert works(app, fresh)


def test_a_role_changed_in_the_database_applies_at_the_next_request_of_the_same_session(
    app: FastAPI,
) -> None:
    clinician, _ = signed_in_browser(app, "clinician")
    admin, _ = signed_in_browser(app, "admin")
    assert clinician.get("/patients/new").status_code == 200
    assert admin.get("/admin/users").status_code == 200
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(update(m.User).where(m.User.username == "clinician").values(role="read_only"))
        db.execute(update(m.User).where(m.User.username == "admin").values(role="clinician"))
        db.commit()
    assert clinician.get("/patients/new").status_code == 403
    assert clinician.get("/patients").status_code == 200  # still signed in, as read-only
    assert admin.get("/admin/users").status_code == 403
    assert admin.get("/patients/new").status_code == 200


def test_the_account_page_lists_only_the_users_own_open_sessions(app: FastAPI) -> None:
    client, _ = signed_in_browser(app, "clinician")
    signed_in_browser(app, "clinician")
    signed_in_browser(app, "reader")
    page = client.get("/account")
    assert page.status_code == 200
    assert page.text.count("<tr>") == 1 + 2  # the header row and the clinician's two sessions
    # the users page counts each user's open sessions
    admin, _ = signed_in_browser(app, "admin")
    users = admin.get("/admin/users").text
    assert 'aria-label="End the sessions of clinician"' in users


def test_a_revoked_row_is_kept_a_day_then_purged(app: FastAPI) -> None:
    token, _ = new_session(app, "reader")
    uid = user_id(app, "reader")
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(
            update(m.UserSession)
            .where(m.UserSession.user_id == uid)
            .values(revoked_at=datetime.now(UTC) - timedelta(days=2))
        )
        db.commit()
    assert not works(app, token)
    signed_in_browser(app, "clinician")
    assert session_rows(app, "reader") == []


def test_an_idle_or_too_old_session_is_refused_from_any_computer_then_purged(
    app: FastAPI,
) -> None:
    settings = app.state.settings
    idle, longest = settings.idle_timeout_minutes * 60, settings.session_max_hours * 3600
    _laptop, token = signed_in_browser(app, "reader")
    now = time.time()
    # a minute inside each limit: still a session
    set_session_times(app, token, started=now - longest + 60, last_seen=now - idle + 60)
    assert works(app, token)
    # past the idle limit: refused with the reason, the cookie cleared
    set_session_times(app, token, started=now - 3600, last_seen=now - idle - 1)
    refused = browser(app, token).get("/patients")
    assert refused.headers["location"] == "/signin?reason=idle"
    assert set_cookies(refused, SESSION_COOKIE)[0].lower().count("max-age=0") == 1
    # past the absolute limit, however recently used
    set_session_times(app, token, started=now - longest - 1, last_seen=now - 5)
    assert not works(app, token)
    signed_in_browser(app, "clinician")  # the next sign-in purges it
    assert session_rows(app, "reader") == []
