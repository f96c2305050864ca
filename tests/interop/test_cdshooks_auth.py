"""Trusting CDS clients: every bad JWT is refused with 401 and its own code; a good one (ES384 or
RS384) is accepted once. The JWK Set is served by a real HTTP stand-in on loopback."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey

from tests.interop.test_cdshooks_helpers import (
    BASE,
    ISSUER,
    StandIn,
    bearer,
    hook_request,
    settings,
    sign,
    stand_in,
    trd_record,
)
from trdnav.errors import InputError
from trdnav.interop.cdshooks.app import create_cds_app
from trdnav.interop.cdshooks.auth import ReplayStore
from trdnav.interop.cdshooks.config import CdsSettings, settings_from_data
from trdnav.knowledge.load import Knowledge

SERVICE = "trdnav-patient-view"
URL = f"{BASE}/cds-services/{SERVICE}"


@pytest.fixture(scope="module")
def ehr() -> Iterator[StandIn]:
    with stand_in() as server:
        yield server


@pytest.fixture(scope="module")
def client(kb: Knowledge, ehr: StandIn) -> Iterator[TestClient]:
    app = create_cds_app(settings(ehr.jwks_url), kb)
    with TestClient(app, base_url=BASE) as c:
        yield c


BODY = hook_request("patient-view", trd_record())


def post(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post(f"/cds-services/{SERVICE}", json=BODY, headers=headers)


def refused(client: TestClient, headers: dict[str, str], code: str) -> dict[str, Any]:
    response = post(client, headers)
    assert response.status_code == 401, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert response.headers["www-authenticate"].startswith("Bearer")
    return error


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_good_jwt_is_accepted_once_and_its_replay_refused(client: TestClient, alg: str) -> None:
    token = sign(URL, alg=alg)
    assert post(client, bearer(token)).status_code == 200
    refused(client, bearer(token), "replayed_token")


def test_the_jwks_is_fetched_from_the_issuer_once_and_cached(kb: Knowledge, ehr: StandIn) -> None:
    before = sum(p == "/jwks.json" for p, _ in ehr.requests)
    with TestClient(create_cds_app(settings(ehr.jwks_url), kb), base_url=BASE) as c:
        for _ in range(3):
            assert post(c, bearer(sign(URL))).status_code == 200
    assert sum(p == "/jwks.json" for p, _ in ehr.requests) - before == 1


def test_aud_may_be_an_array_holding_the_service_url(client: TestClient) -> None:
    assert post(client, bearer(sign([URL, "https://other.example"]))).status_code == 200


def test_no_authorization_header(client: TestClient) -> None:
    refused(client, {}, "missing_token")
    refused(client, {"Authorization": "Basic dXNlcjpwYXNz"}, "missing_token")


def test_a_malformed_token(client: TestClient) -> None:
    refused(client, bearer("not-a-jwt"), "malformed_token")
    refused(client, bearer("a.b.c"), "malformed_token")
    refused(client, bearer("x" * 20_000), "malformed_token")
    refused(client, bearer(sign(URL, header={"kid": ""})), "malformed_token")
    refused(client, bearer(sign(URL, header={"typ": "JOSE+JSON"})), "malformed_token")


def test_an_unsigned_token(client: TestClient) -> None:
    claims = {"iss": ISSUER, "aud": URL, "exp": int(time.time()) + 60, "iat": 0, "jti": "n1"}
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'ehr-ec'})}.{b64(claims)}."
    refused(client, bearer(token), "unsupported_algorithm")


def test_an_hmac_token(client: TestClient) -> None:
    claims = {"iss": ISSUER, "aud": URL, "exp": int(time.time()) + 60, "iat": 0, "jti": "h1"}
    key = OctKey.import_key("a-shared-secret-that-should-never-be-used-here")
    token = jwt.encode({"alg": "HS256", "kid": "ehr-ec"}, claims, key, algorithms=["HS256"])
    refused(client, bearer(token), "unsupported_algorithm")


def test_an_untrusted_issuer(client: TestClient) -> None:
    refused(client, bearer(sign(URL, iss="https://evil.example")), "untrusted_issuer")


def test_a_jku_off_the_allow_list(client: TestClient) -> None:
    token = sign(URL, header={"jku": "https://evil.example/jwks.json"})
    refused(client, bearer(token), "untrusted_jku")


def test_an_unknown_key_id(client: TestClient) -> None:
    refused(client, bearer(sign(URL, header={"kid": "someone-else"})), "unknown_key")


def test_a_token_signed_with_another_key(client: TestClient) -> None:
    refused(client, bearer(sign(URL, wrong_key=True)), "bad_signature")


def test_a_tampered_payload(client: TestClient) -> None:
    head, _payload, sig = sign(URL).split(".")
    claims = {"iss": ISSUER, "aud": URL, "exp": int(time.time()) + 60, "iat": 0, "jti": "t1"}
    refused(client, bearer(f"{head}.{b64(claims)}.{sig}"), "bad_signature")


def test_an_expired_token(client: TestClient) -> None:
    refused(client, bearer(sign(URL, exp_in=-120)), "expired_token")


def test_a_token_for_another_service(client: TestClient) -> None:
    refused(client, bearer(sign(f"{BASE}/cds-services/trdnav-order-sign")), "wrong_audience")
    refused(client, bearer(sign("https://cds.other.example/cds-services/x")), "wrong_audience")


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "aud"])
def test_a_token_without_a_required_claim(client: TestClient, claim: str) -> None:
    refused(client, bearer(sign(URL, drop=(claim,))), "missing_claim")


def test_a_token_issued_in_the_future(client: TestClient) -> None:
    token = sign(URL, exp_in=3600)
    _head, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    assert claims["iat"] < time.time()  # the helper's own token is fine; build one that is not
    from tests.interop.test_cdshooks_helpers import _EC

    claims["iat"] = int(time.time()) + 3600
    bad = jwt.encode({"alg": "ES384", "typ": "JWT", "kid": "ehr-ec"}, claims, _EC, ["ES384"])
    refused(client, bearer(bad), "malformed_token")


def test_an_issuer_whose_jwks_cannot_be_read(kb: Knowledge) -> None:
    cfg = settings("http://127.0.0.1:9/jwks.json", jwks_timeout_seconds=1)
    with TestClient(create_cds_app(cfg, kb), base_url=BASE) as c:
        refused(c, bearer(sign(URL)), "jwks_unavailable")


def test_no_configured_issuer_refuses_every_call(kb: Knowledge) -> None:
    with TestClient(create_cds_app(CdsSettings(), kb), base_url=BASE) as c:
        refused(c, bearer(sign(URL)), "untrusted_issuer")


def test_the_replay_store_forgets_a_jti_once_its_token_expired() -> None:
    now = [1000.0]
    store = ReplayStore(clock=lambda: now[0])
    assert store.first_use("iss", "j", 1010.0)
    assert not store.first_use("iss", "j", 1010.0)
    assert store.first_use("other-iss", "j", 1010.0)
    now[0] = 1100.0
    assert store.first_use("iss", "j", 1200.0)
    assert len(store) == 1  # the expired pairs were purged


def test_settings_refuse_symmetric_algorithms_by_field() -> None:
    with pytest.raises(InputError) as info:
        settings_from_data({"algorithms": ["HS256"], "issuers": [{"iss": "x"}]})
    locs = {p.loc for p in info.value.problems}
    assert locs == {"algorithms", "issuers.0"}
    assert "HS256 not allowed" in str(info.value)
