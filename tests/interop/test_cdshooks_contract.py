"""Contract tests of the CDS Hooks service: discovery, every hook's request and card shapes
(the JSON Schema printed in docs/cds-hooks.md), and the cards a real TRD record gets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from sqlalchemy import select

from tests.interop.test_cdshooks_helpers import (
    BASE,
    TODAY,
    Record,
    bearer,
    draft,
    hook_request,
    med_request,
    order_context,
    settings,
    sign,
    trd_record,
)
from trdnav.interop.cdshooks.app import create_cds_app
from trdnav.interop.cdshooks.prefetch import PREFETCH
from trdnav.interop.cdshooks.service import CdsService
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker
from trdnav.web.app import create_app
from trdnav.web.settings import WebSettings

DOC = Path(__file__).parents[2] / "docs" / "cds-hooks.md"


def card_schema() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- card-schema -->\s*```json\n(.*?)\n```", text, re.DOTALL)
    assert block, "docs/cds-hooks.md lost its card-schema block"
    schema: dict[str, Any] = json.loads(block.group(1))
    Draft202012Validator.check_schema(schema)
    return schema


VALIDATOR = Draft202012Validator(card_schema())


def valid(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = sorted(VALIDATOR.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    cards: list[dict[str, Any]] = body["cards"]
    return cards


@pytest.fixture(scope="module")
def client(kb: Knowledge) -> Iterator[TestClient]:
    with TestClient(create_cds_app(settings(), kb), base_url=BASE) as c:
        yield c


def call(client: TestClient, service: str, body: dict[str, Any]) -> Any:
    url = f"{BASE}/cds-services/{service}"
    return client.post(f"/cds-services/{service}", json=body, headers=bearer(sign(url)))


def topics(cards: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in cards]


def by_topic(cards: list[dict[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [c for c in cards if c["source"]["topic"]["code"] == topic]


# --- discovery -------------------------------------------------------------------------------


def test_discovery_lists_the_three_services_with_their_prefetch_templates(
    client: TestClient,
) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {s: v["hook"] for s, v in services.items()} == {
        "trdnav-patient-view": "patient-view",
        "trdnav-order-select": "order-select",
        "trdnav-order-sign": "order-sign",
    }
    for s in services.values():
        assert s["description"] and s["title"]
        assert s["prefetch"] == PREFETCH
        assert all("{{context.patientId}}" in t for t in s["prefetch"].values())


# --- patient-view ----------------------------------------------------------------------------


def test_patient_view_of_a_trd_record_gives_every_card_the_hook_promises(
    client: TestClient,
) -> None:
    response = call(client, "trdnav-patient-view", hook_request("patient-view", trd_record(2)))
    assert response.status_code == 200, response.text
    cards = valid(response.json())
    assert cards[0]["indicator"] == "critical"
    assert topics(cards)[0] == "suicide-risk"
    assert "item 9" in cards[0]["summary"] and "988" in cards[0]["detail"]
    (trd,) = by_topic(cards, "trd-status")
    assert trd["summary"].startswith("Treatment-resistant depression: 3 failed adequate")
    assert "- sertraline (antidepressant) 2023-02-01" in trd["detail"]
    assert "- escitalopram (antidepressant) 2023-05-15" in trd["detail"]
    assert "Maudsley Staging Method (MSM): 8 (moderate)" in trd["detail"]
    (plan,) = by_topic(cards, "plan")
    assert "venlafaxine" in plan["summary"]
    assert "Response: PHQ-9 19 on 2024-04-01 → 21 on 2024-05-20" in plan["detail"]
    assert re.search(r"^1\. .* — _recommended_", plan["detail"], re.MULTILINE)
    assert re.search(r"^3\. ", plan["detail"], re.MULTILINE)
    assert not re.search(r"^4\. ", plan["detail"], re.MULTILINE)
    (work,) = by_topic(cards, "workup")
    assert "(missing)" in work["detail"] and "(normal)" not in work["detail"]
    (overdue,) = by_topic(cards, "overdue-measures")
    assert "C-SSRS screener" in overdue["summary"] and overdue["indicator"] == "warning"
    (notes,) = by_topic(cards, "data-quality")
    assert "adherence 0.99 estimated from pharmacy dispenses" in notes["detail"]
    for c in cards[:-1]:  # every clinical card links to the clinic app's patient page
        assert c["links"][-1]["url"] == "https://trd.clinic.example/patients/pat-1"


def test_without_a_suicide_signal_there_is_no_critical_card(client: TestClient) -> None:
    cards = valid(
        call(client, "trdnav-patient-view", hook_request("patient-view", trd_record(0))).json()
    )
    assert "suicide-risk" not in topics(cards)
    assert all(c["indicator"] != "critical" for c in cards)
    assert "overdue-measures" not in topics(cards)


def test_a_smart_link_is_offered_when_configured(kb: Knowledge) -> None:
    cfg = settings(smart_launch_url="https://trd.clinic.example/smart/launch")
    with TestClient(create_cds_app(cfg, kb), base_url=BASE) as c:
        cards = valid(
            call(c, "trdnav-patient-view", hook_request("patient-view", trd_record())).json()
        )
    (trd,) = by_topic(cards, "trd-status")
    smart = trd["links"][0]
    assert smart["type"] == "smart" and json.loads(smart["appContext"]) == {"patientId": "pat-1"}


def test_a_record_with_no_coded_episode_says_what_it_assumed(client: TestClient) -> None:
    record = trd_record()
    record.conditions = []
    cards = valid(call(client, "trdnav-patient-view", hook_request("patient-view", record)).json())
    (notes,) = by_topic(cards, "data-quality")
    assert "no depressive or bipolar Condition" in notes["detail"]


def test_a_record_that_cannot_be_read_gets_one_reduced_card_not_an_error(
    client: TestClient,
) -> None:
    record = trd_record()
    record.patient = {**record.patient, "birthDate": "2030-01-01"}  # born after today
    response = call(client, "trdnav-patient-view", hook_request("patient-view", record))
    assert response.status_code == 200
    (only,) = valid(response.json())
    assert only["summary"].startswith("No TRD advice")
    assert "birth_date" in only["detail"]


# --- order-select / order-sign ---------------------------------------------------------------


def test_order_select_checks_only_the_selected_orders(client: TestClient) -> None:
    ctx = order_context(draft("d1", "36437", "sertraline 25 MG", 25))
    ctx["draftOrders"]["entry"].append({"resource": draft("d2", "89013", "aripiprazole", 1)})
    body = hook_request("order-select", trd_record(), context=ctx)
    cards = valid(call(client, "trdnav-order-select", body).json())
    assert all("aripiprazole" not in c["summary"] for c in cards)
    assert any("sertraline" in c["summary"] for c in cards)


@pytest.mark.parametrize("service", ["trdnav-order-select", "trdnav-order-sign"])
def test_an_order_for_a_drug_that_failed_gets_a_card_with_a_remove_suggestion(
    client: TestClient, service: str
) -> None:
    ctx = order_context(draft("d1", "36437", "sertraline 100 MG", 100))
    body = hook_request(service.removeprefix("trdnav-"), trd_record(), context=ctx)
    cards = valid(call(client, service, body).json())
    (failed,) = by_topic(cards, "already-failed")
    assert failed["summary"] == "sertraline already failed an adequate trial in this episode"
    assert "2023-02-01 → 2023-05-02: up to 150 mg/day" in failed["detail"]
    (action,) = failed["suggestions"][0]["actions"]
    assert action == {
        "type": "delete",
        "description": "Remove the draft sertraline order",
        "resourceId": "MedicationRequest/d1",
    }
    assert "dose-below-minimum" not in topics(cards)  # 100 mg/day is adequate


@pytest.mark.parametrize("service", ["trdnav-order-select", "trdnav-order-sign"])
def test_a_low_dose_gets_a_suggestion_that_updates_the_draft_order_to_the_minimum(
    client: TestClient, service: str
) -> None:
    order = draft("d9", None, "Abilify 0.5 MG tablet", 1, per_day=2)  # brand name, no code
    body = hook_request(service.removeprefix("trdnav-"), trd_record(), context=order_context(order))
    cards = valid(call(client, service, body).json())
    (dose,) = by_topic(cards, "dose-below-minimum")
    assert dose["summary"] == "aripiprazole 1 mg/day is below the adequate minimum of 2 mg/day"
    (suggestion,) = dose["suggestions"]
    assert suggestion["isRecommended"] is True
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    updated = action["resource"]
    assert updated["id"] == "d9" and updated["status"] == "draft"
    (dosage,) = updated["dosageInstruction"]
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1  # 2 doses a day x 1 mg
    assert dosage["timing"] == order["dosageInstruction"][0]["timing"]
    assert {k: v for k, v in updated.items() if k != "dosageInstruction"} == {
        k: v for k, v in order.items() if k != "dosageInstruction"
    }


def test_an_maoi_with_a_current_serotonergic_antidepressant_is_a_critical_card(
    client: TestClient,
) -> None:
    ctx = order_context(draft("d1", "8123", "phenelzine 15 MG", 45, per_day=3))
    cards = valid(
        call(
            client, "trdnav-order-sign", hook_request("order-sign", trd_record(), context=ctx)
        ).json()
    )
    assert cards[0]["indicator"] == "critical"
    assert cards[0]["source"]["topic"]["code"] == "contraindication"
    assert "phenelzine with current venlafaxine" in cards[0]["summary"]


def test_an_maoi_started_before_the_washout_ends_is_a_critical_washout_card(
    client: TestClient,
) -> None:
    record = trd_record(current=False)
    record.requests.append(
        med_request("mr-f", "4493", "fluoxetine 20 MG", "2024-03-01", 20, days=80)
    )  # stopped 2024-05-20: fluoxetine needs 5 weeks before an MAOI
    ctx = order_context(draft("d1", "8123", "phenelzine 15 MG", 45, per_day=3))
    cards = valid(
        call(
            client, "trdnav-order-select", hook_request("order-select", record, context=ctx)
        ).json()
    )
    (washout,) = by_topic(cards, "maoi-washout")
    assert washout["indicator"] == "critical"
    assert "fluoxetine stopped on 2024-05-20" in washout["summary"]
    assert cards.index(washout) == 0


def test_a_contraindicated_condition_is_screened_for_the_ordered_drug(
    client: TestClient,
) -> None:
    record = trd_record(current=False)
    record.conditions.append(
        {
            "resourceType": "Condition",
            "id": "cond-sz",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G40.909"}]
            },
            "subject": {"reference": "Patient/pat-1"},
            "onsetDateTime": "2010-01-01",
        }
    )
    ctx = order_context(draft("d1", "42347", "bupropion 150 MG", 300))
    cards = valid(
        call(client, "trdnav-order-sign", hook_request("order-sign", record, context=ctx)).json()
    )
    (contra,) = by_topic(cards, "contraindication")
    assert contra["indicator"] == "critical" and "seizure" in contra["detail"].lower()


def test_orders_of_other_drugs_get_no_card(client: TestClient) -> None:
    ctx = order_context(draft("d1", "197361", "amlodipine 5 MG", 5))
    body = hook_request("order-sign", trd_record(), context=ctx)
    assert valid(call(client, "trdnav-order-sign", body).json()) == []


def test_the_resolved_condition_is_not_screened(client: TestClient) -> None:
    record = trd_record(current=False)
    record.conditions[1]["clinicalStatus"] = {"coding": [{"code": "resolved"}]}
    ctx = order_context(draft("d1", "321988", "escitalopram 10 MG", 10))
    cards = valid(
        call(client, "trdnav-order-sign", hook_request("order-sign", record, context=ctx)).json()
    )
    assert topics(cards) == ["already-failed"]


# --- the service mounted in the clinic app, with feedback in the audit log ---------------------


@pytest.fixture
def clinic(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    web = WebSettings.model_validate(
        {"database_url": db_url, "dev_mode": True, "today": TODAY, "secret_key": "s" * 40}
    )
    app = create_app(web, kb)
    app.state.cds_service = CdsService(settings(), kb)
    yield app
    app.state.engine.dispose()


def test_the_clinic_app_serves_the_hooks_and_audits_feedback(clinic: FastAPI) -> None:
    with TestClient(clinic, base_url=BASE) as c:
        assert c.get("/cds-services").status_code == 200
        cards = valid(
            call(c, "trdnav-patient-view", hook_request("patient-view", trd_record())).json()
        )
        uuids = [card["uuid"] for card in cards[:2]]
        feedback = {
            "feedback": [
                {
                    "card": uuids[0],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2024-06-01T10:00:00Z",
                },
                {
                    "card": uuids[1],
                    "outcome": "accepted",
                    "acceptedSuggestions": [{"id": "s-1"}],
                    "outcomeTimestamp": "2024-06-01T10:01:00Z",
                },
            ]
        }
        url = f"{BASE}/cds-services/trdnav-patient-view/feedback"
        response = c.post(
            "/cds-services/trdnav-patient-view/feedback", json=feedback, headers=bearer(sign(url))
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"recorded": 2}
        unsigned = c.post("/cds-services/trdnav-patient-view/feedback", json=feedback)
        assert unsigned.status_code == 401
    with make_sessionmaker(clinic.state.engine)() as db:
        events = db.scalars(select(m.AuditEvent).where(m.AuditEvent.entity == "cds_card")).all()
    assert sorted((e.action, e.entity_id, e.who) for e in events) == sorted(
        [
            ("cds_overridden", uuids[0], "cds:https://ehr.example.org"),
            ("cds_accepted", uuids[1], "cds:https://ehr.example.org"),
        ]
    )


def test_feedback_that_breaks_the_specification_is_refused_by_field(client: TestClient) -> None:
    url = f"{BASE}/cds-services/trdnav-patient-view/feedback"
    bad = {"feedback": [{"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2024-06-01"}]}
    response = client.post(
        "/cds-services/trdnav-patient-view/feedback", json=bad, headers=bearer(sign(url))
    )
    assert response.status_code == 400
    assert response.json()["error"]["problems"][0]["loc"] == "feedback[0].acceptedSuggestions"


def test_the_record_is_read_by_the_projects_fhir_import(kb: Knowledge) -> None:
    from trdnav.interop.cdshooks.fhir_history import read_history

    record: Record = trd_record()
    read = read_history(record.all(), kb, date(2024, 6, 1))
    sertraline = next(t for t in read.history.treatments if getattr(t, "drug", "") == "sertraline")
    assert sertraline.adherence == 0.99  # type: ignore[union-attr]
    assert [(d.from_.isoformat(), d.mg_per_day) for d in sertraline.doses] == [  # type: ignore[union-attr]
        ("2023-02-01", 50.0),
        ("2023-02-15", 150.0),
    ]
    assert any("estimated from pharmacy dispenses" in n for n in read.notes)
