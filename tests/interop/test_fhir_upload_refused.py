"""A file upload refused for its CSRF token closes its temporary file at once (no leak: a
ResourceWarning is an error in this suite)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.web.conftest import signed_in

EHR = Path(__file__).parent / "fixtures" / "ehr_requests.json"


def test_a_forged_upload_is_refused_and_leaves_nothing_open(client: TestClient) -> None:
    signed_in(client, "clinician")
    files = {"bundle": ("record.json", EHR.read_bytes(), "application/fhir+json")}
    refused = client.post("/fhir/import", files=files, data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert client.get("/patients/MRN-1001").status_code == 404  # nothing was imported
