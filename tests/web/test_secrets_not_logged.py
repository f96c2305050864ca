"""Secrets and keys never reach a log, and never sit in the database in clear.

Every logger at DEBUG — the app's, uvicorn's, SQLAlchemy's, psycopg's, python-multipart's — while
a session exercises each secret the app handles: passwords (sign-in, a failed sign-in, an admin
creating a user), API bearer tokens (accepted and refused), the self-report link token, the
secret key that signs links and forms, the database password in its URL, and, on the CDS Hooks
service, the EHR's JWT and the FHIR access token it hands over (accepted and refused calls).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from trdnav.interop.cdshooks.app import create_cds_app
from trdnav.knowledge.load import Knowledge

from ..interop.test_cdshooks_helpers import (
    ACCESS_TOKEN,
    BASE,
    bearer,
    hook_request,
    settings,
    sign,
    stand_in,
    trd_record,
)
from .conftest import PASSWORD
from .test_audit import LOGGERS, TEST_CLIENT_LOGGERS
from .test_roles import World, build_world, make_app
from .test_security import database_rows, sign_in

DB_PASSWORD = "db-pw-zq9x7-not-for-logs"
NEW_USER_PASSWORD = "new-user-passphrase-k3v8"
WRONG_PASSWORD = "wrong-passphrase-m4t1"
FORGED_TOKEN = "trd_forged-token-p0w2e8"


def _with_password(db_url: str) -> str:
    """PostgreSQL URLs carry a password (trust authentication ignores it; a log must too)."""
    if db_url.startswith("postgresql"):
        return db_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    return db_url


@pytest.fixture
def world(db_url: str, kb: Knowledge) -> Iterator[World]:
    application: FastAPI = make_app(_with_password(db_url), kb)
    yield build_world(application, db_url, kb)
    application.state.engine.dispose()


def _everything_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


def _leaks(caplog: pytest.LogCaptureFixture, secrets: dict[str, str]) -> list[str]:
    records = [r for r in caplog.records if not r.name.startswith(TEST_CLIENT_LOGGERS)]
    assert records, "nothing was logged: the capture is not working"
    return [
        f"{what} in {r.name} {r.levelname}: {r.getMessage()[:160]}"
        for r in records
        for what, value in secrets.items()
        if value in r.getMessage() or value in str(r.args) or value in (r.exc_text or "")
    ]


def test_passwords_tokens_and_keys_never_reach_the_log_or_the_database(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    _everything_at_debug(caplog)
    app, client = world.app, world.client
    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "new user's password": NEW_USER_PASSWORD,
        "API token": world.api_tokens["clinician"],
        "forged API token": FORGED_TOKEN,
        "self-report link token": world.samples["token"],
        "secret key": app.state.settings.secret_key,
    }
    if str(app.state.settings.database_url).startswith("postgresql"):
        secrets["database password"] = DB_PASSWORD

    assert sign_in(client, "clinician", WRONG_PASSWORD).status_code == 401
    assert sign_in(client, "admin").status_code == 303
    page = client.get("/admin/users")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    made = client.post(
        "/admin/users",
        data={
            "username": "newcomer",
            "role": "clinician",
            "password": NEW_USER_PASSWORD,
            "csrf_token": csrf.group(1),
        },
    )
    assert made.status_code == 303, made.text
    session_cookie = next(iter(client.cookies.values()))
    secrets["session cookie"] = session_cookie
    client.cookies.clear()

    api = world.api_tokens["clinician"]
    pid = world.samples["patient_id"]
    read = client.get(f"/api/patients/{pid}", headers={"Authorization": f"Bearer {api}"})
    assert read.status_code == 200
    refused = client.get(
        f"/api/patients/{pid}", headers={"Authorization": f"Bearer {FORGED_TOKEN}"}
    )
    assert refused.status_code == 401

    form = client.get(f"/r/{world.samples['token']}")
    nonce = re.search(r'name="form_nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    answers = {f"item_{n}": "1" for n in range(1, 10)}
    sent = client.post(
        f"/r/{world.samples['token']}", data={**answers, "form_nonce": nonce.group(1)}
    )
    assert sent.status_code < 400
    again = client.post(f"/r/{world.samples['token']}", data=answers)  # a spent link
    assert again.status_code >= 400

    assert not _leaks(caplog, secrets), "\n".join(_leaks(caplog, secrets)[:20])

    # what the database keeps of each secret is a hash or a digest, never the text
    stored = repr(database_rows(app.state.engine))
    for what in ("password", "new user's password", "API token", "secret key", "session cookie"):
        assert secrets[what] not in stored, f"the {what} is stored in clear"


def _cds_call(client: TestClient, body: dict[str, Any], token: str) -> Any:
    return client.post("/cds-services/trdnav-patient-view", json=body, headers=bearer(token))


def test_the_ehrs_jwt_and_fhir_access_token_never_reach_the_cds_services_log(
    kb: Knowledge, caplog: pytest.LogCaptureFixture
) -> None:
    _everything_at_debug(caplog)
    url = f"{BASE}/cds-services/trdnav-patient-view"
    good, forged = sign(url), sign(url, wrong_key=True)
    with stand_in(trd_record()) as ehr:
        cds = create_cds_app(settings(jwks_url=ehr.jwks_url), kb)
        body = hook_request(
            "patient-view",
            None,
            fhirServer=ehr.fhir,
            fhirAuthorization={
                "access_token": ACCESS_TOKEN,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "patient/*.read",
                "subject": "trdnav",
            },
        )
        with TestClient(cds, base_url=BASE) as client:
            answered = _cds_call(client, body, good)
            assert answered.status_code == 200, answered.text
            assert any(auth == f"Bearer {ACCESS_TOKEN}" for _, auth in ehr.requests)
            assert _cds_call(client, body, forged).status_code == 401
            assert _cds_call(client, body, good).status_code == 401  # replayed jti
    secrets = {
        "JWT": good,
        "JWT signature": good.rsplit(".", 1)[1],
        "forged JWT": forged,
        "FHIR access token": ACCESS_TOKEN,
    }
    assert not _leaks(caplog, secrets), "\n".join(_leaks(caplog, secrets)[:20])
