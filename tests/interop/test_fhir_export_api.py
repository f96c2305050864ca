"""``GET /api/patients/{id}/$everything``: the Bundle of a stored patient, behind the API's
authentication, with the API's 404 error shape, audited as a read and as an export. Runs on
SQLite and PostgreSQL (``db_url``), in process over the real app (tests/web/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from typer.testing import CliRunner

from tests.web.conftest import PASSWORD, make_settings, signed_in, store_examples
from trdnav.cli import app as cli_app
from trdnav.cli_web import create_user
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.identity import save_identity
from trdnav.web.app import create_app

URL = "/api/patients/EX10/$everything"


@pytest.fixture
def web(db_url: str, kb: Knowledge) -> Iterator[TestClient]:
    """The app of tests/web/conftest.py with the two users these tests sign in as."""
    create_user(db_url, "clinician", "clinician", PASSWORD)
    create_user(db_url, "reader", "read_only", PASSWORD)
    application: FastAPI = create_app(make_settings(db_url), kb)
    with TestClient(application, base_url="http://testserver", follow_redirects=False) as c:
        yield c
    application.state.engine.dispose()


def token_for(db_url: str, username: str) -> dict[str, str]:
    """A bearer token made exactly as ``trdnav user token USERNAME`` makes it."""
    result = CliRunner().invoke(cli_app, ["user", "token", username, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


def audit(db_url: str) -> list[tuple[str, str, str, str | None]]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(
                    m.AuditEvent.who,
                    m.AuditEvent.action,
                    m.AuditEvent.entity,
                    m.AuditEvent.entity_id,
                ).order_by(m.AuditEvent.id)
            )
            return [(w, a, e, i) for w, a, e, i in rows]
    finally:
        engine.dispose()


def test_the_route_needs_credentials_and_a_known_patient(
    db_url: str, kb: Knowledge, web: TestClient
) -> None:
    store_examples(db_url, kb, "10")
    anonymous = web.get(URL)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_signed_in"
    unknown = web.get("/api/patients/NOPE/$everything", headers=token_for(db_url, "reader"))
    assert unknown.status_code == 404
    body = unknown.json()
    assert body == {
        "error": {"code": "patient_not_found", "message": body["error"]["message"], "problems": []}
    }
    assert not [row for row in audit(db_url) if row[1] == "export_fhir"]
    operation = web.app.openapi()["paths"]["/api/patients/{patient_id}/$everything"]["get"]  # type: ignore[attr-defined]
    assert set(operation["responses"]) >= {"200", "401", "403", "404"}


def test_a_reader_gets_the_patients_bundle_and_the_export_is_audited(
    db_url: str, kb: Knowledge, web: TestClient
) -> None:
    store_examples(db_url, kb, "10", "03")
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            who = PatientIdentity(given=("Ada",), family="Lovelace", mrn="MRN-0042")
            save_identity(session, "EX10", who, user="fixture")
    finally:
        engine.dispose()
    response = web.get(URL, headers=token_for(db_url, "reader"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["name"] == [{"use": "official", "family": "Lovelace", "given": ["Ada"]}]
    assert "MRN-0042" in {i["value"] for i in patient["identifier"]}
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Observation", "QuestionnaireResponse", "CarePlan", "Provenance"} <= kinds
    status = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("code", {}).get("text") == "TRD status"
    )
    assert status["effectiveDateTime"] == date(2024, 6, 1).isoformat()  # as of today
    rows = [r for r in audit(db_url) if r[0] == "reader"]
    assert ("reader", "read", "patient", "EX10") in rows
    assert ("reader", "read", "patient_identity", "EX10") in rows
    assert rows[-1] == ("reader", "export_fhir", "patient", "EX10")
    # a signed-in session may export too (a read: no CSRF token needed)
    signed_in(web, "clinician")
    assert web.get("/api/patients/EX03/$everything").status_code == 200
    assert [r for r in audit(db_url) if r[1] == "export_fhir"][-1] == (
        "clinician",
        "export_fhir",
        "patient",
        "EX03",
    )
