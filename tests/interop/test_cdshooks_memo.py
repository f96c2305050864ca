"""The CDS service's memo: a record answered once is answered again without re-reading it, on
the event loop, with the same cards under new uuids, and with the caller verified every time."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.interop.test_cdshooks_helpers import (
    BASE,
    bearer,
    hook_request,
    settings,
    sign,
    stand_in,
    trd_record,
)
from trdnav.interop.cdshooks.app import create_cds_app
from trdnav.interop.cdshooks.errors import CdsError
from trdnav.interop.cdshooks.service import CdsService, _body_key
from trdnav.knowledge.load import Knowledge

SERVICE = "trdnav-patient-view"
URL = f"{BASE}/cds-services/{SERVICE}"


@pytest.fixture(scope="module")
def service(kb: Knowledge) -> CdsService:
    return CdsService(settings(), kb)


def body(**extra: Any) -> bytes:
    return json.dumps(hook_request("patient-view", trd_record(), **extra)).encode()


def without_uuids(answer: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for card in answer["cards"]:
        c = {k: v for k, v in card.items() if k != "uuid"}
        if "suggestions" in c:
            c["suggestions"] = [
                {k: v for k, v in s.items() if k != "uuid"} for s in c["suggestions"]
            ]
        out.append(c)
    return out


def test_a_memoised_record_gets_the_same_cards_under_new_uuids(service: CdsService) -> None:
    first = service.call(SERVICE, body(), f"Bearer {sign(URL)}", BASE)
    assert service.call_memoised(SERVICE, body(), f"Bearer {sign(URL)}", BASE) is not None
    again = service.call_memoised(SERVICE, body(), f"Bearer {sign(URL)}", BASE)
    assert again is not None
    second = json.loads(again)
    assert without_uuids(second) == without_uuids(first)
    uuids = [c["uuid"] for c in first["cards"]] + [c["uuid"] for c in second["cards"]]
    assert len(set(uuids)) == len(uuids) == 2 * len(first["cards"]) > 0


def test_a_record_not_seen_before_is_left_to_the_full_call(service: CdsService) -> None:
    new = body(context={"userId": "Practitioner/someone-else", "patientId": "pat-1"})
    assert service.call_memoised(SERVICE, new, f"Bearer {sign(URL)}", BASE) is None


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: sign(URL, exp_in=-120), "expired_token"),
        (lambda: sign(URL, wrong_key=True), "bad_signature"),
        (lambda: sign(BASE + "/cds-services/other"), "wrong_audience"),
    ],
)
def test_the_memo_never_answers_an_unverified_caller(
    service: CdsService, token: Any, code: str
) -> None:
    service.call(SERVICE, body(), f"Bearer {sign(URL)}", BASE)
    with pytest.raises(CdsError) as raised:
        service.call_memoised(SERVICE, body(), f"Bearer {token()}", BASE)
    assert raised.value.status == 401
    assert code in json.dumps(raised.value.body())


def test_a_replayed_token_is_refused_by_the_memo_too(service: CdsService) -> None:
    token = f"Bearer {sign(URL)}"
    service.call(SERVICE, body(), token, BASE)
    with pytest.raises(CdsError, match="already used"):
        service.call_memoised(SERVICE, body(), token, BASE)


def test_keys_not_yet_fetched_leave_the_call_to_the_thread_without_spending_the_jti(
    kb: Knowledge,
) -> None:
    with stand_in() as ehr:
        service = CdsService(settings(ehr.jwks_url), kb)
        # memoise the record without fetching keys through the service's own verifier
        service.cache.put(
            service._memo_key(SERVICE, service.today(), body()),
            CdsService(settings(), kb)._prepare(
                service._service(SERVICE), json.loads(body()), service.today()
            ),
        )
        token = f"Bearer {sign(URL)}"
        assert service.call_memoised(SERVICE, body(), token, BASE) is None  # would fetch
        assert ehr.requests == []
        assert service.call(SERVICE, body(), token, BASE)["cards"]  # same jti: still unspent
        assert [path for path, _ in ehr.requests] == ["/jwks.json"]


def test_over_http_the_second_answer_equals_the_first(kb: Knowledge) -> None:
    with TestClient(create_cds_app(settings(), kb), base_url=BASE) as client:
        answers = [
            client.post(f"/cds-services/{SERVICE}", content=body(), headers=bearer(sign(URL)))
            for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.headers["content-type"] == "application/json" for a in answers)
    first, second = (a.json() for a in answers)
    assert without_uuids(first) == without_uuids(second)


# --- the memo key --------------------------------------------------------------------------

uuids = st.uuids().map(str)
tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._", min_size=1, max_size=40)


@given(uuids, uuids, tokens, tokens)
def test_the_key_ignores_the_per_call_fields(a: str, b: str, t1: str, t2: str) -> None:
    def request(instance: str, token: str) -> bytes:
        return body(
            hookInstance=instance,
            fhirServer="https://ehr.example.org/fhir",
            fhirAuthorization={"access_token": token, "token_type": "Bearer", "expires_in": 300},
        )

    assert _body_key(request(a, t1)) == _body_key(request(b, t2))


@given(st.integers(min_value=0, max_value=3))
def test_the_key_changes_with_the_record(item9: int) -> None:
    plain = json.dumps(hook_request("patient-view", trd_record())).encode()
    other = json.dumps(hook_request("patient-view", trd_record(item9=item9))).encode()
    assert (_body_key(plain) == _body_key(other)) == (item9 == 0)
