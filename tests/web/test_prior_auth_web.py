"""Prior authorisation in the app: the panel on the patient page (loaded with htmx, the payer
list filtered by treatment), the API's two reads and their errors, the packet page with its
editable letter, and the PDF printed from it with the policy's label on every page.

The app's knowledge base holds the packaged policies and the test policies of
tests/reports/test_prior_auth_packet.py (so the assertions do not follow a payer file's edits).
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from tests.reports.test_prior_auth_packet import with_test_policies
from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples
from .test_identity import JANE, put_identity

Json = dict[str, Any]


@pytest.fixture(scope="module")
def kb(kb: Knowledge) -> Knowledge:  # the app fixture of conftest builds the app on this one
    return with_test_policies(kb)


@pytest.fixture
def ex10(db_url: str, kb: Knowledge) -> str:
    (patient_id,) = store_examples(db_url, kb, "10")
    return patient_id


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _errors(response: Any) -> list[tuple[str, str]]:
    body = response.json()
    assert set(body) == {"error"}, body
    return [(p["loc"], p["code"]) for p in body["error"]["problems"]]


# --- the panel ------------------------------------------------------------------------------


def test_the_patient_page_loads_the_panel_with_htmx(client: TestClient, ex10: str) -> None:
    signed_in(client, "reader")
    page = client.get(f"/patients/{ex10}")
    assert page.status_code == 200
    assert 'id="prior-auth-panel"' in page.text
    assert f'hx-get="/patients/{ex10}/prior-auth" hx-trigger="load"' in page.text
    panel = client.get(f"/patients/{ex10}/prior-auth", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert "<html" not in panel.text  # the panel alone
    assert 'hx-target="#prior-auth-panel"' in panel.text
    assert 'value="test_tms"' in panel.text and 'value="test_spravato"' not in panel.text
    assert "Choose a payer policy" in panel.text


def test_the_payer_list_follows_the_treatment_and_a_payer_of_the_other_is_dropped(
    client: TestClient, ex10: str
) -> None:
    signed_in(client, "reader")
    hx = {"HX-Request": "true"}
    panel = client.get(
        f"/patients/{ex10}/prior-auth?treatment=esketamine&payer=test_tms", headers=hx
    )
    assert panel.status_code == 200
    assert 'value="test_spravato"' in panel.text and 'value="test_tms"' not in panel.text
    assert "prior-auth-result" not in panel.text  # the rTMS payer was dropped, not checked
    assert '<option value="esketamine" selected>' in panel.text


def test_choosing_a_payer_shows_the_gap_list_with_the_suicide_risk_alerts_first(
    client: TestClient, ex10: str
) -> None:
    signed_in(client, "clinician")
    panel = client.get(
        f"/patients/{ex10}/prior-auth?treatment=rtms&payer=test_tms&date=2024-06-01",
        headers={"HX-Request": "true"},
    )
    assert panel.status_code == 200
    text = panel.text
    assert "Test Health Plan — Transcranial magnetic stimulation" in text
    assert "unverified policy" in text
    for label in ("MET", "NOT MET", "MISSING DATA"):
        assert f">{label}</span>" in text
    assert "Missing:</strong> An FDA-cleared TMS device is used" in text
    assert text.index("Suicide risk") < text.index("prior-auth-result")
    assert (
        f'href="/patients/{ex10}/prior-auth/packet?payer=test_tms&amp;treatment=rtms'
        '&amp;date=2024-06-01&amp;kind=initial"'
    ) in text


def test_without_htmx_the_panel_is_a_page_and_bad_values_are_shown_beside_their_fields(
    client: TestClient, ex10: str
) -> None:
    signed_in(client, "reader")
    page = client.get(f"/patients/{ex10}/prior-auth?treatment=rtms&payer=nope&date=2024-02-30")
    assert page.status_code == 422
    assert "<html" in page.text
    assert "no payer policy &#39;nope&#39;; rtms policies:" in page.text
    assert 'id="pa-payer-error"' in page.text and 'id="pa-date-error"' in page.text
    assert "prior-auth-result" not in page.text


# --- the API --------------------------------------------------------------------------------


def test_the_api_returns_the_result_with_the_suicide_risk_alerts(
    client: TestClient, ex10: str
) -> None:
    signed_in(client, "reader")
    r = client.get(f"/api/patients/{ex10}/prior-auth?payer=test_tms&treatment=rtms")
    assert r.status_code == 200, r.text
    body: Json = r.json()
    assert body["policy_id"] == "test_tms" and body["treatment"] == "rtms"
    assert body["request_date"] == "2024-06-01" and body["kind"] == "initial"
    assert body["overall"] == "not_met" and body["verified"] is False
    statuses = {x["id"]: x["status"] for x in body["results"]}
    assert statuses["adult"] == "met" and statuses["recent_phq9"] == "not_met"
    assert statuses["device"] == "missing"
    assert body["alerts"] and {a["code"] for a in body["alerts"]} == {"suicide_risk"}
    renewal = client.get(
        f"/api/patients/{ex10}/prior-auth?payer=test_spravato&treatment=esketamine"
        "&date=2024-05-01&kind=renewal"
    ).json()
    assert (renewal["request_date"], renewal["kind"]) == ("2024-05-01", "renewal")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("treatment=rtms", [("payer", "missing")]),
        ("payer=test_tms&treatment=tms", [("treatment", "literal_error")]),
        ("payer=test_tms&treatment=esketamine", [("payer", "wrong_treatment")]),
        ("payer=nope&treatment=rtms", [("payer", "unknown_payer")]),
        ("payer=test_tms&treatment=rtms&date=2024-13-01", [("date", "date_from_datetime_parsing")]),
        ("payer=test_tms&treatment=rtms&kind=appeal", [("kind", "literal_error")]),
    ],
)
def test_bad_query_values_are_422_in_the_error_shape_naming_the_field(
    client: TestClient, ex10: str, query: str, expected: list[tuple[str, str]]
) -> None:
    signed_in(client, "reader")
    r = client.get(f"/api/patients/{ex10}/prior-auth?{query}")
    assert r.status_code == 422, r.text
    got = _errors(r)
    assert [loc for loc, _ in got] == [loc for loc, _ in expected]
    if expected[0][1] in ("wrong_treatment", "unknown_payer", "missing"):
        assert got == expected
    if expected[0][1] == "wrong_treatment":
        message = r.json()["error"]["problems"][0]["message"]
        assert "'test_tms' is a rtms policy" in message and "test_spravato" in message


def test_an_unknown_patient_is_404_and_the_policies_list_filters_by_treatment(
    client: TestClient, ex10: str
) -> None:
    signed_in(client, "reader")
    r = client.get("/api/patients/NOPE/prior-auth?payer=test_tms&treatment=rtms")
    assert r.status_code == 404 and r.json()["error"]["code"] == "patient_not_found"
    everything = client.get("/api/prior-auth/policies").json()
    ids = {p["id"] for p in everything["policies"]}
    assert {"test_tms", "test_spravato"} <= ids
    only = client.get("/api/prior-auth/policies?treatment=esketamine").json()["policies"]
    assert {p["treatment"] for p in only} == {"esketamine"}
    assert all(p["criteria"] for p in only)


# --- the packet -----------------------------------------------------------------------------


def test_the_packet_page_shows_the_draft_letter_in_a_textarea_with_the_print_form(
    client: TestClient, db_url: str, ex10: str
) -> None:
    put_identity(db_url, ex10, JANE)
    signed_in(client, "reader")
    page = client.get(f"/patients/{ex10}/prior-auth/packet?payer=test_tms&treatment=rtms")
    assert page.status_code == 200
    m = re.search(r'<textarea id="pa-letter" name="letter"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert m is not None
    letter = m.group(1)
    assert "Patient: SAMPLETON, Jane Quinn · DOB 1981-04-12 · MRN MRN-0042" in letter
    assert "sertraline (SSRI), 2023-09-01 to 2023-12-08: maximum 150 mg/day" in letter
    assert "[TO CONFIRM before sending: An FDA-cleared TMS device is used]" in letter
    assert f'action="/patients/{ex10}/prior-auth/packet.pdf"' in page.text
    assert 'name="csrf_token" value="' in page.text and "Print PDF" in page.text
    assert page.text.index("Suicide risk") < page.text.index("pa-letter")


def test_the_packet_page_refuses_a_bad_choice_naming_the_field(
    client: TestClient, ex10: str
) -> None:
    signed_in(client, "reader")
    page = client.get(f"/patients/{ex10}/prior-auth/packet?payer=test_tms&treatment=esketamine")
    assert page.status_code == 422
    assert "payer: &#39;test_tms&#39; is a rtms policy, not esketamine" in page.text


def test_the_printed_pdf_carries_the_policy_label_on_every_page_and_the_edited_letter(
    client: TestClient, db_url: str, ex10: str, kb: Knowledge
) -> None:
    put_identity(db_url, ex10, JANE)
    csrf = signed_in(client, "reader")
    form = {
        "csrf_token": csrf,
        "payer": "test_tms",
        "treatment": "rtms",
        "date": "2024-06-01",
        "kind": "initial",
        "letter": "Dear reviewer,\r\nEDITED-LETTER-LINE-42 by the clinic.\r\n",
    }
    r = client.post(f"/patients/{ex10}/prior-auth/packet.pdf", data=form)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    disposition = r.headers["content-disposition"]
    assert f'filename="prior-auth-{ex10}-test_tms-2024-06-01.pdf"' in disposition
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages]
    label = _squash(kb.payers["test_tms"].label())
    assert len(pages) >= 2
    for n, page in enumerate(pages, start=1):
        assert label in _squash(page), f"page {n}"
        assert "effectivefrom2024-01-01" in _squash(page), f"page {n}"
    text = _squash(" ".join(pages))
    assert "EDITED-LETTER-LINE-42bytheclinic." in text
    assert "Ireaquestauthorisation" not in text and "Iamrequestingauthorisation" not in text
    assert "SAMPLETON,JaneQuinn" in text and "MRN-0042" in text
    assert "Decisionsupport,notamedicaldevice" in text and "Unverifiedpolicy" in text


def test_printing_needs_the_forms_csrf_token(client: TestClient, ex10: str) -> None:
    signed_in(client, "reader")
    form = {"payer": "test_tms", "treatment": "rtms", "letter": "x"}
    r = client.post(f"/patients/{ex10}/prior-auth/packet.pdf", data=form)
    assert r.status_code == 403
