"""The second factor: TOTP enrolment with recovery codes, the sign-in code step, single use,
throttling, enrolment required of admins, turning it off (the user, an admin) — each audited.

Codes are computed from the secret the enrolment page shows (pyotp), at explicit time steps.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker
from trdnav.web import security
from trdnav.web.security import PENDING_COOKIE, SESSION_COOKIE
from trdnav.web.settings import WebSettings

from .test_roles import make_app, new_session
from .test_security import (
    age_failed_signins,
    audit_actions,
    database_rows,
    set_cookies,
    sign_in,
    user_id,
)


@functools.cache
def _verified(stored: str | None, password: str) -> bool:
    return security.verify_password(stored, password)


@pytest.fixture(autouse=True)
def verify_each_password_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real argon2 check, once per (hash, password): codes, not hashing, are tested here."""
    from trdnav.web.routes import auth

    monkeypatch.setattr(auth, "verify_password", _verified)


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    application = make_app(db_url, kb)
    yield application
    application.state.engine.dispose()


def browser(app: FastAPI) -> TestClient:
    return TestClient(app, follow_redirects=False)


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no field {name}"
    return found.group(1)


def csrf_of(client: TestClient, path: str = "/account") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'data-csrf="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def code(secret: str, offset: int = 0) -> str:
    """The code of the time step ``offset`` steps from now."""
    return pyotp.TOTP(secret).at(time.time(), counter_offset=offset)


def enrol(client: TestClient) -> tuple[str, list[str]]:
    """Enrol the signed-in ``client``: (the secret, the recovery codes shown)."""
    page = client.get("/account/totp")
    assert page.status_code == 200, page.text
    secret = re.sub(r"\s", "", field_value(page.text, "totp-secret"))
    done = client.post(
        "/account/totp", data={"code": code(secret), "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 200, done.text
    return secret, re.findall(r"<li><code>([a-z2-7-]+)</code></li>", done.text)


def field_value(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}" type="text" readonly value="([^"]*)"', html)
    assert found is not None
    return found.group(1)


def csrf_from(html: str) -> str:
    found = re.search(r'data-csrf="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def signed_in(app: FastAPI, username: str) -> TestClient:
    client = browser(app)
    assert sign_in(client, username).status_code == 303
    return client


def forget_last_step(app: FastAPI, username: str) -> None:
    """As if minutes had passed since the last code (every code of now is new again)."""
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(
            update(m.UserTotp)
            .where(m.UserTotp.user_id == user_id(app, username))
            .values(last_step=pyotp.TOTP(pyotp.random_base32()).timecode(time.time()) - 5)
        )
        db.commit()


def password_step(client: TestClient, username: str) -> Any:
    response = sign_in(client, username)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin/code"
    return response


def code_step(client: TestClient, text: str) -> Any:
    page = client.get("/signin/code")
    assert page.status_code == 200 and 'name="code"' in page.text
    return client.post(
        "/signin/code", data={"code": text, "csrf_token": field(page.text, "csrf_token")}
    )


def enrolled(app: FastAPI, username: str) -> tuple[str, list[str]]:
    client = signed_in(app, username)
    secret, codes = enrol(client)
    forget_last_step(app, username)
    return secret, codes


def sessions_of(app: FastAPI, username: str) -> int:
    with make_sessionmaker(app.state.engine)() as db:
        rows = db.scalars(
            select(m.UserSession.id).where(m.UserSession.user_id == user_id(app, username))
        )
        return len(list(rows))


# --- enrolment ----------------------------------------------------------------------------------


def test_enrolment_shows_the_secret_as_text_qr_and_otpauth_address_and_needs_a_first_code(
    app: FastAPI,
) -> None:
    client = signed_in(app, "clinician")
    page = client.get("/account/totp")
    assert page.status_code == 200
    secret = re.sub(r"\s", "", field_value(page.text, "totp-secret"))
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # 160 bits
    assert re.search(r'<svg viewBox="[\d ]+" class="qr"><title>QR code', page.text)
    uri = field_value(page.text, "totp-uri").replace("&amp;", "&")
    assert uri.startswith("otpauth://totp/TRD%20Navigator:clinician?")
    assert f"secret={secret}" in uri and "issuer=TRD%20Navigator" in uri
    assert client.get("/account/totp").text.count(secret[:8]) >= 1  # a reload keeps the secret
    # not active before a first code: sign-in asks for none
    assert sign_in(browser(app), "clinician").headers["location"] == "/patients"
    wrong = client.post(
        "/account/totp", data={"code": code(secret, 5), "csrf_token": csrf_from(page.text)}
    )
    assert wrong.status_code == 422 and "That code is not right" in wrong.text
    assert sign_in(browser(app), "clinician").headers["location"] == "/patients"
    done = client.post(
        "/account/totp", data={"code": code(secret), "csrf_token": csrf_from(page.text)}
    )
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", c) for c in codes)  # 80 bits
    stored = repr(database_rows(app.state.engine))
    assert not any(c in stored or c.replace("-", "") in stored for c in codes)
    # shown once: the set-up page now goes to the account page, which shows none
    assert client.get("/account/totp").headers["location"] == "/account"
    account = client.get("/account").text
    assert "Recovery codes left: <strong>10</strong>" in account
    assert not any(c in account for c in codes)
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "totp_failed") == [("clinician", uid)]
    assert audit_actions(app, "totp_enrolled") == [("clinician", uid)]
    assert sign_in(browser(app), "clinician").headers["location"] == "/signin/code"


# --- signing in with a code ---------------------------------------------------------------------


def test_the_password_alone_opens_nothing_and_the_right_code_starts_the_session(
    app: FastAPI,
) -> None:
    secret, _codes = enrolled(app, "clinician")
    before = sessions_of(app, "clinician")  # the one that enrolled
    client = browser(app)
    first = password_step(client, "clinician")
    assert not set_cookies(first, SESSION_COOKIE)
    (pending,) = set_cookies(first, PENDING_COOKIE)
    attrs = pending.lower()
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/signin" in attrs
    token = pending.split(";")[0].split("=", 1)[1]
    assert token not in repr(database_rows(app.state.engine))  # a digest only
    assert sessions_of(app, "clinician") == before
    assert client.get("/patients").headers["location"].startswith("/signin")
    wrong = code_step(client, code(secret, offset=5))
    assert wrong.status_code == 401 and "That code is not right" in wrong.text
    assert not set_cookies(wrong, SESSION_COOKIE) and sessions_of(app, "clinician") == before
    right = code_step(client, code(secret))
    assert right.status_code == 303 and right.headers["location"] == "/patients"
    assert set_cookies(right, SESSION_COOKIE) and sessions_of(app, "clinician") == before + 1
    assert client.get("/patients").status_code == 200
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "signin_second_step") == [("clinician", uid)]
    assert audit_actions(app, "totp_failed") == [("clinician", uid)]
    assert audit_actions(app, "signin")[-1] == ("clinician", uid)
    # the pending sign-in is spent: its cookie opens the code form no more
    again = client.post("/signin/code", data={"code": code(secret, 1), "csrf_token": "x"})
    assert again.status_code == 400 and "Enter your user name and password again" in again.text


def test_a_code_works_once_and_only_within_one_step_of_now(app: FastAPI) -> None:
    secret, _codes = enrolled(app, "clinician")
    client = browser(app)
    password_step(client, "clinician")
    assert code_step(client, code(secret, offset=-2)).status_code == 401  # a minute old
    assert code_step(client, code(secret, offset=2)).status_code == 401
    now_code = code(secret, offset=-1)
    assert code_step(client, now_code).status_code == 303  # 30 s of clock drift is fine
    other = browser(app)
    password_step(other, "clinician")
    reused = code_step(other, now_code)
    assert reused.status_code == 401 and "used already" in reused.text
    assert code_step(other, code(secret, offset=1)).status_code == 303  # a later step: yes


def test_a_recovery_code_signs_in_once(app: FastAPI) -> None:
    _secret, codes = enrolled(app, "clinician")
    client = browser(app)
    password_step(client, "clinician")
    typed = codes[3].upper().replace("-", " ")  # as read aloud: case and spacing do not matter
    assert code_step(client, typed).status_code == 303
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "recovery_code_used") == [("clinician", uid)]
    assert "Recovery codes left: <strong>9</strong>" in client.get("/account").text
    again = browser(app)
    password_step(again, "clinician")
    assert code_step(again, codes[3]).status_code == 401
    assert code_step(again, codes[4]).status_code == 303


def test_wrong_codes_are_throttled_like_passwords_and_a_right_password_does_not_reset_them(
    app: FastAPI,
) -> None:
    secret, _codes = enrolled(app, "clinician")
    settings = app.state.settings
    client = browser(app)
    password_step(client, "clinician")
    for _ in range(settings.signin_max_failures - 1):
        assert code_step(client, code(secret, offset=5)).status_code == 401
    # the right password again does not clear the failures (else codes could be guessed forever)
    password_step(client, "clinician")
    assert code_step(client, "999999x").status_code == 401  # the fifth failure
    blocked = code_step(client, code(secret))  # the right code
    assert blocked.status_code == 429
    assert "Too many wrong codes or passwords" in blocked.text
    assert not set_cookies(blocked, SESSION_COOKIE)
    # the password step is refused for that name too, from anywhere
    elsewhere = TestClient(app, client=("192.0.2.8", 4000), follow_redirects=False)
    assert sign_in(elsewhere, "clinician").status_code == 429
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "totp_throttled") == [("clinician", uid)]
    assert len(audit_actions(app, "totp_failed")) == settings.signin_max_failures
    # the window passes
    age_failed_signins(app, settings.signin_window_minutes + 1)
    assert code_step(client, code(secret)).status_code == 303


def test_the_code_step_is_bound_to_its_password_step_and_expires(app: FastAPI) -> None:
    secret, _codes = enrolled(app, "clinician")
    before = sessions_of(app, "clinician")
    # no pending sign-in, or a forged one: start again
    stranger = browser(app)
    stranger.cookies.set(PENDING_COOKIE, "a-token-never-given-" + "z" * 30)
    refused = stranger.post("/signin/code", data={"code": code(secret), "csrf_token": "x"})
    assert refused.status_code == 400 and 'name="password"' in refused.text
    # the form's token must be the pending sign-in's own
    client = browser(app)
    password_step(client, "clinician")
    forged = client.post("/signin/code", data={"code": code(secret), "csrf_token": "forged"})
    assert forged.status_code == 403 and not set_cookies(forged, SESSION_COOKIE)
    # five minutes later the password step is spent
    with make_sessionmaker(app.state.engine)() as db:
        db.execute(
            update(m.PendingSignin).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.commit()
    page = client.get("/signin/code")
    assert "waited too long" in page.text and 'name="password"' in page.text
    late = client.post("/signin/code", data={"code": code(secret), "csrf_token": "x"})
    assert late.status_code == 400 and sessions_of(app, "clinician") == before


# --- required for admins ------------------------------------------------------------------------


def test_the_requirement_is_on_for_admins_outside_dev_mode_and_off_for_clinicians_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "k" * 40
    assert WebSettings(secret_key=key).require_totp_for_admins is True
    assert WebSettings(secret_key=key).require_totp_for_clinicians is False
    assert WebSettings(dev_mode=True).require_totp_for_admins is False
    assert WebSettings(dev_mode=True, require_totp_for_admins=True).require_totp_for_admins
    monkeypatch.setenv("TRDNAV_DEV", "1")
    monkeypatch.setenv("TRDNAV_REQUIRE_TOTP_FOR_ADMINS", "1")
    monkeypatch.setenv("TRDNAV_REQUIRE_TOTP_FOR_CLINICIANS", "1")
    env = WebSettings.from_env()
    assert env.require_totp_for_admins and env.require_totp_for_clinicians


def test_an_admin_without_a_second_factor_is_sent_to_enrolment_before_anything_else(
    db_url: str, kb: Knowledge
) -> None:
    strict = make_app(db_url, kb, require_totp_for_admins=True)
    try:
        admin = signed_in(strict, "admin")
        for path in ("/patients", "/admin/users", "/admin/audit", "/account"):
            response = admin.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == "/account/totp", path
        api = admin.get("/api/patients")
        assert api.status_code == 403
        assert api.json()["error"]["code"] == "second_factor_needed"
        page = admin.get("/account/totp")
        assert page.status_code == 200 and "Your role requires a second factor" in page.text
        # a write is refused too (and nothing stored)
        made = admin.post(
            "/admin/users",
            data={"username": "x1", "role": "admin", "password": "y" * 14,
                  "csrf_token": csrf_from(page.text)},
        )  # fmt: skip
        assert made.status_code == 303 and made.headers["location"] == "/account/totp"
        assert user_id_or_none(strict, "x1") is None
        # clinicians are not asked
        assert signed_in(strict, "clinician").get("/patients").status_code == 200
        enrol(admin)
        assert admin.get("/admin/users").status_code == 200
    finally:
        strict.state.engine.dispose()


def user_id_or_none(app: FastAPI, username: str) -> int | None:
    with make_sessionmaker(app.state.engine)() as db:
        return db.scalar(select(m.User.id).where(m.User.username == username))


def test_a_clinic_can_require_the_second_factor_of_clinicians_too(
    db_url: str, kb: Knowledge
) -> None:
    strict = make_app(db_url, kb, require_totp_for_clinicians=True)
    try:
        for name in ("clinician", "reader"):
            response = signed_in(strict, name).get("/patients")
            assert response.headers["location"] == "/account/totp", name
        assert signed_in(strict, "admin").get("/patients").status_code == 200  # dev mode
    finally:
        strict.state.engine.dispose()


# --- turning it off ------------------------------------------------------------------------------


def test_the_user_turns_the_second_factor_off_only_with_a_current_code(app: FastAPI) -> None:
    secret, _codes = enrolled(app, "clinician")
    client = browser(app)
    password_step(client, "clinician")
    assert code_step(client, code(secret, -1)).status_code == 303
    csrf = csrf_of(client)
    wrong = client.post("/account/totp/disable", data={"code": "12345", "csrf_token": csrf})
    assert wrong.status_code == 422 and "Nothing was changed" in wrong.text
    done = client.post("/account/totp/disable", data={"code": code(secret, 1), "csrf_token": csrf})
    assert done.status_code == 303
    assert "The second factor is off" in client.get(done.headers["location"]).text
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "totp_disabled") == [("clinician", uid)]
    assert sign_in(browser(app), "clinician").headers["location"] == "/patients"
    with make_sessionmaker(app.state.engine)() as db:
        assert (
            db.scalar(select(m.RecoveryCode.id).where(m.RecoveryCode.user_id == int(uid))) is None
        )


def test_an_admin_removes_the_second_factor_of_a_user_who_lost_their_phone(app: FastAPI) -> None:
    secret, _codes = enrolled(app, "clinician")
    clinician = browser(app)
    password_step(clinician, "clinician")
    assert code_step(clinician, code(secret)).status_code == 303
    admin = signed_in(app, "admin")
    users = admin.get("/admin/users")
    assert 'aria-label="Remove the second factor of clinician (lost phone)"' in users.text
    uid = user_id(app, "clinician")
    done = admin.post(f"/admin/users/{uid}/totp/reset", data={"csrf_token": csrf_from(users.text)})
    assert done.status_code == 303
    assert "second factor of clinician was removed" in admin.get(done.headers["location"]).text
    assert audit_actions(app, "totp_reset_by_admin") == [("admin", str(uid))]
    assert audit_actions(app, "sessions_revoked") == [("admin", str(uid))]
    assert clinician.get("/patients").headers["location"].startswith("/signin")
    assert sign_in(browser(app), "clinician").headers["location"] == "/patients"


def test_api_bearer_tokens_are_unchanged_by_the_second_factor(db_url: str, kb: Knowledge) -> None:
    from .test_roles import build_world

    strict = make_app(db_url, kb, require_totp_for_admins=True)
    try:
        world = build_world(strict, db_url, kb)
        token = {"Authorization": f"Bearer {world.api_tokens['admin']}"}
        assert world.client.get("/api/patients", headers=token).status_code == 200
        cookie, _csrf = new_session(strict, "admin")
        world.client.cookies.set(SESSION_COOKIE, cookie)
        assert world.client.get("/api/patients").status_code == 403
    finally:
        strict.state.engine.dispose()


def test_new_recovery_codes_replace_the_old_ones_with_a_current_code(app: FastAPI) -> None:
    secret, old_codes = enrolled(app, "clinician")
    client = browser(app)
    password_step(client, "clinician")
    assert code_step(client, old_codes[0]).status_code == 303
    csrf = csrf_of(client)
    renewed = client.post(
        "/account/totp/recovery-codes", data={"code": code(secret), "csrf_token": csrf}
    )
    assert renewed.status_code == 200
    new_codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", renewed.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    uid = str(user_id(app, "clinician"))
    assert audit_actions(app, "recovery_codes_renewed") == [("clinician", uid)]
    other = browser(app)
    password_step(other, "clinician")
    assert code_step(other, old_codes[1]).status_code == 401  # the old ones are gone
    assert code_step(other, new_codes[0]).status_code == 303


def test_guessing_codes_from_an_open_session_is_throttled_too(app: FastAPI) -> None:
    secret, _codes = enrolled(app, "clinician")
    client = browser(app)
    password_step(client, "clinician")
    assert code_step(client, code(secret)).status_code == 303
    csrf = csrf_of(client)
    for _ in range(app.state.settings.signin_max_failures):
        wrong = client.post(
            "/account/totp/disable", data={"code": code(secret, 5), "csrf_token": csrf}
        )
        assert wrong.status_code == 422
    blocked = client.post(
        "/account/totp/disable", data={"code": code(secret, 1), "csrf_token": csrf}
    )
    assert blocked.status_code == 429 and "Too many wrong codes" in blocked.text
    assert "Recovery codes left" in client.get("/account").text  # still on


# --- the server-side way back in ----------------------------------------------------------------


def test_trdnav_user_reset_totp_lets_a_locked_out_user_in_with_the_password_alone(
    app: FastAPI,
) -> None:
    from typer.testing import CliRunner

    from trdnav.cli import app as cli

    enrolled(app, "clinician")
    assert sessions_of(app, "clinician") == 1  # the one that enrolled
    url = app.state.settings.database_url
    unknown = CliRunner().invoke(cli, ["user", "reset-totp", "nobody", "--database-url", url])
    assert unknown.exit_code == 2 and "no user 'nobody'" in unknown.output
    done = CliRunner().invoke(cli, ["user", "reset-totp", "clinician", "--database-url", url])
    assert done.exit_code == 0, done.output
    assert "second factor removed, 1 session(s) ended" in done.output
    with make_sessionmaker(app.state.engine)() as db:
        rows = db.scalars(
            select(m.UserSession).where(m.UserSession.user_id == user_id(app, "clinician"))
        )
        assert all(r.revoked_at is not None for r in rows)
    client = browser(app)
    assert sign_in(client, "clinician").headers["location"] == "/patients"  # no code step
    assert audit_actions(app, "totp_reset_by_admin")[-1][0].startswith("cli:")
