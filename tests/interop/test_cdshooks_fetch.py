"""Without prefetch the service reads the EHR's FHIR server (a real HTTP stand-in on loopback);
bad requests get a clear 4xx in the documented shape, never a 500."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.interop.test_cdshooks_helpers import (
    ACCESS_TOKEN,
    BASE,
    StandIn,
    bearer,
    hook_request,
    settings,
    sign,
    stand_in,
    trd_record,
)
from trdnav.interop.cdshooks.app import create_cds_app
from trdnav.interop.cdshooks.prefetch import PREFETCH
from trdnav.knowledge.load import Knowledge

SERVICE = "trdnav-patient-view"
URL = f"{BASE}/cds-services/{SERVICE}"
AUTH = {
    "access_token": ACCESS_TOKEN,
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/*.read",
    "subject": "trdnav-cds",
}


@pytest.fixture(scope="module")
def ehr() -> Iterator[StandIn]:
    with stand_in(trd_record(item9=1)) as server:
        yield server


@pytest.fixture(scope="module")
def client(kb: Knowledge) -> Iterator[TestClient]:
    cfg = settings(fhir_timeout_seconds=1.0, max_body_bytes=2_000_000)
    with TestClient(create_cds_app(cfg, kb), base_url=BASE, raise_server_exceptions=False) as c:
        yield c


def post(client: TestClient, body: Any, service: str = SERVICE, **kw: Any) -> Any:
    url = f"{BASE}/cds-services/{service}"
    return client.post(f"/cds-services/{service}", json=body, headers=bearer(sign(url)), **kw)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "problems"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def summaries(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["summary"] for c in response.json()["cards"]]


def test_without_prefetch_the_record_is_read_from_the_fhir_server_with_the_token(
    client: TestClient, ehr: StandIn
) -> None:
    ehr.requests.clear()
    body = hook_request("patient-view", None, fhirServer=ehr.fhir, fhirAuthorization=AUTH)
    fetched = summaries(post(client, body))
    paths = [p for p, _ in ehr.requests]
    assert sorted(paths) == sorted(
        "/fhir/" + t.replace("{{context.patientId}}", "pat-1") for t in PREFETCH.values()
    )
    assert all(auth == f"Bearer {ACCESS_TOKEN}" for _, auth in ehr.requests)
    prefetched = summaries(post(client, hook_request("patient-view", trd_record(item9=1))))
    assert fetched == prefetched
    assert fetched[0].startswith("Suicide-risk signal")


def test_only_the_keys_not_prefetched_are_fetched(client: TestClient, ehr: StandIn) -> None:
    ehr.requests.clear()
    body = hook_request("patient-view", trd_record(), fhirServer=ehr.fhir, fhirAuthorization=AUTH)
    del body["prefetch"]["observations"]
    del body["prefetch"]["conditions"]
    summaries(post(client, body))
    assert sorted(p.split("?")[0] for p, _ in ehr.requests) == [
        "/fhir/Condition",
        "/fhir/Observation",
    ]


def test_a_fhir_server_that_does_not_answer_in_time_is_a_412(
    client: TestClient, ehr: StandIn
) -> None:
    ehr.delay["/fhir/Condition"] = 3.0
    try:
        body = hook_request("patient-view", None, fhirServer=ehr.fhir, fhirAuthorization=AUTH)
        started = time.monotonic()
        error = error_of(post(client, body), 412)
        assert time.monotonic() - started < 2.5
    finally:
        ehr.delay.clear()
    assert error["code"] == "fhir_unavailable" and "in time" in error["message"]


def test_a_refused_token_at_the_fhir_server_is_a_412(client: TestClient, ehr: StandIn) -> None:
    wrong = {**AUTH, "access_token": "expired"}
    body = hook_request("patient-view", None, fhirServer=ehr.fhir, fhirAuthorization=wrong)
    error = error_of(post(client, body), 412)
    assert "401" in error["message"]


def test_a_fhir_server_nobody_listens_on_is_a_412(client: TestClient) -> None:
    body = hook_request(
        "patient-view", None, fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization=AUTH
    )
    assert error_of(post(client, body), 412)["code"] == "fhir_unavailable"


def test_no_prefetch_and_no_fhir_server_is_a_412(client: TestClient) -> None:
    error = error_of(post(client, hook_request("patient-view", None)), 412)
    assert error["code"] == "fhir_data_unavailable"


def test_a_partial_prefetch_without_a_server_gives_a_clearly_reduced_card(
    client: TestClient,
) -> None:
    body = hook_request("patient-view", trd_record())
    del body["prefetch"]["conditions"]
    response = post(client, body)
    cards = response.json()["cards"]
    reduced = next(c for c in cards if c["summary"].startswith("Reduced advice"))
    assert reduced["indicator"] == "warning"
    assert (
        "**conditions** — comorbidities unknown: contraindications not screened"
        in (reduced["detail"])
    )


def test_a_missing_patient_id_is_a_400_naming_the_field(client: TestClient) -> None:
    body = hook_request("patient-view", trd_record())
    del body["context"]["patientId"]
    error = error_of(post(client, body), 400)
    assert error["problems"][0]["loc"] == "context.patientId"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"hook": "order-sign"}, "hook"),
        ({"hookInstance": ""}, "hookInstance"),
        ({"context": "pat-1"}, "context"),
        ({"fhirAuthorization": AUTH}, "fhirServer"),
    ],
)
def test_a_request_breaking_the_specification_is_a_400_naming_the_field(
    client: TestClient, change: dict[str, Any], loc: str
) -> None:
    body = {**hook_request("patient-view", trd_record()), **change}
    assert error_of(post(client, body), 400)["problems"][0]["loc"] == loc


def test_an_order_hook_without_draft_orders_is_a_400(client: TestClient) -> None:
    body = hook_request("order-sign", trd_record())
    error = error_of(post(client, body, "trdnav-order-sign"), 400)
    assert error["problems"][0]["loc"] == "context.draftOrders"
    body = hook_request(
        "order-select", trd_record(), context={"draftOrders": {"resourceType": "Bundle"}}
    )
    error = error_of(post(client, body, "trdnav-order-select"), 400)
    assert error["problems"][0]["loc"] == "context.selections"


def test_a_body_that_is_not_json_is_a_400(client: TestClient) -> None:
    response = client.post(
        f"/cds-services/{SERVICE}",
        content=b"{not json",
        headers={**bearer(sign(URL)), "Content-Type": "application/json"},
    )
    assert error_of(response, 400)["code"] == "invalid_json"


def test_an_unknown_service_is_a_404(client: TestClient) -> None:
    error = error_of(post(client, hook_request("patient-view", trd_record()), "nope"), 404)
    assert error["code"] == "unknown_service"


def test_a_50_mb_prefetch_is_refused_with_413_before_it_is_read(client: TestClient) -> None:
    body = hook_request("patient-view", trd_record())
    body["prefetch"]["observations"]["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "id": "big",
                "note": [{"text": "x" * 50_000_000}],
            }
        }
    )
    data = json.dumps(body).encode()
    assert len(data) > 50_000_000
    response = client.post(
        f"/cds-services/{SERVICE}",
        content=data,
        headers={**bearer(sign(URL)), "Content-Type": "application/json"},
    )
    error = error_of(response, 413)
    assert error["code"] == "request_too_large"


def test_a_large_body_without_a_length_is_cut_off_while_streaming(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"hook": "patient-view", "pad": "'
        for _ in range(300):
            yield b"x" * 10_000
        yield b'"}'

    response = client.post(
        f"/cds-services/{SERVICE}",
        content=chunks(),
        headers={**bearer(sign(URL)), "Content-Type": "application/json"},
    )
    assert error_of(response, 413)["code"] == "request_too_large"


def test_too_many_resources_is_a_413(kb: Knowledge) -> None:
    cfg = settings(max_resources=50)
    with TestClient(create_cds_app(cfg, kb), base_url=BASE) as c:
        error = error_of(post(c, hook_request("patient-view", trd_record())), 413)
    assert error["code"] == "too_many_resources"
