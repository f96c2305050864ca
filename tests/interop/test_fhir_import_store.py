"""FHIR import into the clinic database: the CLI's --database-url and POST /api/fhir/import store
the history and the identity; importing the same data again changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from trdnav.cli import app as cli_app
from trdnav.storage import models as m
from trdnav.storage import repository
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.identity import load_identity
from trdnav.storage.migrations import upgrade
from trdnav.web.routes import fhir_import

from ..databases import fresh_database
from ..web.conftest import signed_in
from ..web.test_api import bearer, token_for

FIXTURES = Path(__file__).parent / "fixtures"
EHR = FIXTURES / "ehr_requests.json"


def stored(db_url: str, patient_id: str) -> tuple[int, str | None, list[str]]:
    """(record version, identity family name, audit actions on the patient)."""
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            version = repository.patient_version(session, patient_id) or 0
            identity = load_identity(session, patient_id, user="test")
            actions = list(
                session.scalars(
                    select(m.AuditEvent.action)
                    .where(m.AuditEvent.entity == "patient", m.AuditEvent.entity_id == patient_id)
                    .order_by(m.AuditEvent.id)
                )
            )
    finally:
        engine.dispose()
    return version, identity.family if identity else None, actions


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The API tests run on SQLite only (the store itself is tested on both engines)."""
    url = f"sqlite:///{tmp_path / 'trdnav.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database on each engine (as tests/databases.py makes them)."""
    yield from fresh_database(request, tmp_path)


def test_the_cli_stores_history_and_identity_and_a_second_import_changes_nothing(
    any_db_url: str,
) -> None:
    db_url = any_db_url
    args = ["fhir", "import", str(EHR), "--database-url", db_url, "--today", "2024-06-01"]
    first = CliRunner().invoke(cli_app, args)
    assert first.exit_code == 0, first.output
    assert "stored MRN-1001 (created, version 1)" in first.output
    again = CliRunner().invoke(cli_app, args)
    assert again.exit_code == 0, again.output
    assert "stored MRN-1001 (unchanged, version 1)" in again.output
    version, family, actions = stored(db_url, "MRN-1001")
    assert (version, family) == (1, "Rivera")
    assert actions.count("create") == 1 and "update" not in actions


@pytest.fixture
def writer(db_url: str, app: FastAPI) -> dict[str, str]:
    return bearer(token_for(db_url, "clinician"))


def test_the_api_imports_a_bundle_and_a_repeat_is_unchanged(
    client: TestClient, writer: dict[str, str], db_url: str
) -> None:
    body = EHR.read_bytes()
    headers = {**writer, "Content-Type": "application/fhir+json"}
    first = client.post("/api/fhir/import", content=body, headers=headers)
    assert first.status_code == 200, first.text
    out = first.json()
    assert (out["patient_id"], out["action"], out["version"]) == ("MRN-1001", "created", 1)
    assert {n["code"] for n in out["report"]["not_mapped"]} >= {"unknown_drug", "refuted"}
    second = client.post("/api/fhir/import", content=body, headers=headers)
    assert second.json()["action"] == "unchanged"
    assert second.json()["version"] == 1
    record = client.get("/api/patients/MRN-1001", headers=writer)
    assert record.status_code == 200
    assert record.json()["history"]["episode"]["diagnosis"] == "mdd_recurrent"
    assert stored(db_url, "MRN-1001")[1] == "Rivera"


def test_the_api_follows_the_write_conventions_roles_and_csrf(
    client: TestClient, db_url: str, app: FastAPI
) -> None:
    body = EHR.read_bytes()
    assert client.post("/api/fhir/import", content=body).status_code == 401
    reader = bearer(token_for(db_url, "reader"))
    refused = client.post("/api/fhir/import", content=body, headers=reader)
    assert refused.status_code == 403
    csrf = signed_in(client, "clinician")
    assert client.post("/api/fhir/import", content=body).status_code == 403
    ok = client.post("/api/fhir/import", content=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200, ok.text


def test_the_api_answers_bad_input_in_its_error_shape(
    client: TestClient, writer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    malformed = client.post("/api/fhir/import", content=b'{"resourceType": ', headers=writer)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["problems"][0]["code"] == "json_invalid"
    text = client.post(
        "/api/fhir/import", content=b"hello", headers={**writer, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    two = json.loads(EHR.read_text())
    two["entry"].append({"resource": {**two["entry"][0]["resource"], "id": "someone-else"}})
    several = client.post("/api/fhir/import", json=two, headers=writer)
    assert several.status_code == 422
    assert several.json()["error"]["problems"][0]["code"] == "several_patients"
    monkeypatch.setattr(fhir_import, "MAX_BYTES", 1000)
    big = client.post("/api/fhir/import", content=EHR.read_bytes(), headers=writer)
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams
        yield EHR.read_bytes()

    streamed = client.post("/api/fhir/import", content=chunks(), headers=writer)
    assert streamed.status_code == 413


def test_the_upload_page_imports_a_file_and_shows_the_report(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    csrf = signed_in(client, "clinician")
    page = client.get("/fhir/import")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    files = {"bundle": ("record.json", EHR.read_bytes(), "application/fhir+json")}
    refused = client.post("/fhir/import", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    done = client.post("/fhir/import", files=files, data={"csrf_token": csrf})
    assert done.status_code == 200, done.text
    assert 'href="/patients/MRN-1001"' in done.text
    assert "RIVERA, Ana Lucia" in done.text
    assert "unknown_drug" in done.text
    broken = {"bundle": ("record.json", b'{"resourceType": ', "application/json")}
    bad = client.post("/fhir/import", files=broken, data={"csrf_token": csrf})
    assert bad.status_code == 422
    assert "Nothing was imported" in bad.text and "malformed JSON" in bad.text
    monkeypatch.setattr(fhir_import, "MAX_BYTES", 1000)
    big = client.post("/fhir/import", files=files, data={"csrf_token": csrf})
    assert big.status_code == 413
    assert "above the import" in big.text


def test_an_mrn_the_clinic_already_holds_updates_that_patient(
    client: TestClient, writer: dict[str, str], db_url: str
) -> None:
    from datetime import date

    from trdnav.identity import PatientIdentity
    from trdnav.knowledge.load import default_knowledge
    from trdnav.storage import records
    from trdnav.storage.identity import save_identity

    kb = default_knowledge()
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            typed = {
                "patient": {"id": "CLINIC-7"},
                "episode": {"onset": "2023-01-01", "diagnosis": "mdd_single", "severity": "mild"},
            }
            history = records.validate(typed, kb, date(2024, 6, 1))
            records.save(session, history, kb, date(2024, 6, 1), "test")
            save_identity(session, "CLINIC-7", PatientIdentity(family="Rivera", mrn="MRN-1001"))
    finally:
        engine.dispose()
    answer = client.post("/api/fhir/import", content=EHR.read_bytes(), headers=writer)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["patient_id"], answer.json()["matched_by_mrn"]) == ("CLINIC-7", True)
    assert answer.json()["action"] == "updated"
    assert stored(db_url, "MRN-1001")[0] == 0  # no second patient with the same MRN
    record = client.get("/api/patients/CLINIC-7", headers=writer).json()
    assert record["history"]["episode"]["diagnosis"] == "mdd_recurrent"
