"""The JSON API: bearer tokens and sessions, versions with If-Match, the history format as bodies.

Every test runs on SQLite and PostgreSQL (``db_url``). Tokens are made by ``trdnav user token``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from trdnav.cli import app as cli_app
from trdnav.core.history import History
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.repository import load_history

from .conftest import EXAMPLES, TODAY, example, signed_in, store_examples

Json = dict[str, Any]

BUPROPION_FAILED = {
    "type": "medication",
    "drug": "bupropion",
    "start": "2024-01-16",
    "stop": "2024-04-30",
    "doses": [{"from": "2024-01-16", "mg_per_day": 150}, {"from": "2024-01-30", "mg_per_day": 300}],
    "adherence": 0.9,
    "outcome": "no_response",
}
PHQ9_ITEM9_POSITIVE = {
    "instrument": "PHQ-9",
    "date": "2024-05-27",
    "items": [2, 2, 2, 2, 1, 2, 2, 1, 2],
}


def token_for(db_url: str, username: str) -> str:
    """A bearer token made exactly as ``trdnav user token USERNAME`` makes it."""
    result = CliRunner().invoke(cli_app, ["user", "token", username, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("trd_")
    return token


def bearer(token: str, version: int | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return headers


def history_json(name: str) -> Json:
    """An example history file's data as a client sends it (JSON: dates as strings)."""
    data = yaml.safe_load(example(name).read_text(encoding="utf-8"))
    loaded: Json = json.loads(json.dumps(data, default=str))
    return loaded


@pytest.fixture
def writer(db_url: str, app: FastAPI) -> dict[str, str]:
    return bearer(token_for(db_url, "clinician"))


@pytest.fixture
def reader(db_url: str, app: FastAPI) -> dict[str, str]:
    return bearer(token_for(db_url, "reader"))


def stored(db_url: str, patient_id: str) -> tuple[History, int]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            history = load_history(session, patient_id, "test")
            version = session.scalar(
                select(m.Patient.version).where(m.Patient.external_id == patient_id)
            )
            return history, int(version or 0)
    finally:
        engine.dispose()


def audit_actions(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.scalars(select(m.AuditEvent.action).order_by(m.AuditEvent.id)))
    finally:
        engine.dispose()


def api_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of the API, included routers too."""
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path or ""
        if isinstance(route, APIRoute) and path.startswith("/api/"):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, path


def concrete(path: str) -> str:
    return path.format(
        patient_id="EX01", index=0, alert_key="suicide_risk%7Cx%7C2024-01-01%7C", course_id="C-NONE"
    )


def holds(got: Any, sent: Any) -> bool:
    """``got`` has every field of ``sent`` with the same value, at every depth."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(k in got and holds(got[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(got) == len(sent) and all(map(holds, got, sent))
    return bool(got == sent)


def problems(response: Any) -> dict[str, str]:
    """loc -> code of an error response, after checking the one error shape."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "problems"}
    return {p["loc"]: p["code"] for p in body["error"]["problems"]}


# --- authentication and roles


def test_every_api_route_answers_401_in_the_error_shape_without_credentials(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    seen = 0
    for method, path in api_routes(app):
        response = client.request(method, concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_signed_in"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        seen += 1
    assert seen >= 16


def test_a_revoked_or_unknown_token_is_refused_with_401(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    token = token_for(db_url, "clinician")
    assert client.get("/api/patients/EX01", headers=bearer(token)).status_code == 200
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            session.execute(update(m.ApiToken).values(revoked=True))
            session.commit()
    finally:
        engine.dispose()
    assert client.get("/api/patients/EX01", headers=bearer(token)).status_code == 401
    assert client.get("/api/patients", headers=bearer("trd_" + "x" * 43)).status_code == 401


def test_a_read_only_token_reads_but_gets_403_on_every_write_and_nothing_changes(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge, reader: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    before = stored(db_url, "EX01")
    for path in ("/api/patients", "/api/patients/EX01", "/api/patients/EX01/assessment"):
        assert client.get(path, headers=reader).status_code == 200, path
    writes = [(meth, path) for meth, path in api_routes(app) if meth != "GET"]
    assert len(writes) >= 10
    for method, path in writes:
        body = BUPROPION_FAILED if "treatments" in path else history_json("01")
        response = client.request(
            method, concrete(path), json=body, headers={**reader, "If-Match": '"1"'}
        )
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert stored(db_url, "EX01") == before


def test_a_browser_session_writes_only_with_its_csrf_header(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    refused = client.post("/api/patients/EX01/treatments", json=BUPROPION_FAILED)
    assert refused.status_code == 403
    assert stored(db_url, "EX01")[1] == 1
    added = client.post(
        "/api/patients/EX01/treatments", json=BUPROPION_FAILED, headers={"X-CSRF-Token": csrf}
    )
    assert added.status_code == 201, added.text
    assert client.get("/api/patients/EX01").json()["version"] == 2


# --- whole records and versions


def test_create_read_replace_then_a_stale_or_missing_if_match_stores_nothing(
    client: TestClient, db_url: str, writer: dict[str, str]
) -> None:
    body = history_json("01")
    created = client.post("/api/patients", json=body, headers=writer)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/api/patients/EX01"
    assert created.headers["ETag"] == '"1"'
    assert created.json()["version"] == 1
    assert created.json()["summary"]["trd_status"] == "not_trd"

    read = client.get("/api/patients/EX01", headers=writer)
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    assert read.json()["version"] == 1

    changed = read.json()["history"]
    changed["treatments"].append(BUPROPION_FAILED)
    replaced = client.put("/api/patients/EX01", json=changed, headers={**writer, "If-Match": '"1"'})
    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["ETag"] == '"2"'
    assert replaced.json()["summary"]["trd_status"] == "trd"

    stale = client.put("/api/patients/EX01", json=body, headers={**writer, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "stale_record"
    assert stale.headers["ETag"] == '"2"'
    history, version = stored(db_url, "EX01")
    assert version == 2 and len(history.treatments) == 3

    missing = client.put("/api/patients/EX01", json=body, headers=writer)
    assert missing.status_code == 428
    assert missing.json()["error"]["code"] == "if_match_required"
    assert stored(db_url, "EX01")[1] == 2


def test_creating_a_patient_whose_id_exists_is_409_and_keeps_the_record(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    before = stored(db_url, "EX01")
    other = history_json("01")
    other["treatments"] = []
    response = client.post("/api/patients", json=other, headers=writer)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "patient_exists"
    assert stored(db_url, "EX01") == before


def test_replacing_needs_the_urls_patient_a_valid_if_match_and_an_existing_record(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    body = history_json("01")
    moved = client.put("/api/patients/EX02", json=body, headers={**writer, "If-Match": '"1"'})
    assert moved.status_code == 404
    other = {**body, "patient": {**body["patient"], "id": "EX99"}}
    mismatch = client.put("/api/patients/EX01", json=other, headers={**writer, "If-Match": '"1"'})
    assert mismatch.status_code == 422
    assert problems(mismatch) == {"patient.id": "patient_id_mismatch"}
    garbled = client.put("/api/patients/EX01", json=body, headers={**writer, "If-Match": "v1"})
    assert garbled.status_code == 422
    assert problems(garbled) == {"If-Match": "invalid_etag"}
    assert stored(db_url, "EX01")[1] == 1
    weak = client.put("/api/patients/EX01", json=body, headers={**writer, "If-Match": 'W/"1"'})
    assert weak.status_code == 200


def test_every_example_history_posted_comes_back_unchanged(
    client: TestClient, writer: dict[str, str]
) -> None:
    names = sorted(p.name[:2] for p in EXAMPLES.glob("*.yaml"))
    assert len(names) >= 20
    for name in names:
        sent = history_json(name)
        created = client.post("/api/patients", json=sent, headers=writer)
        assert created.status_code == 201, (name, created.text)
        got = client.get(created.headers["Location"], headers=writer).json()["history"]
        # every field sent comes back as sent; the fields added are the format's defaults
        assert holds(got, sent), name
        assert History.model_validate(got) == History.model_validate(sent), name


# --- invalid input


def test_an_invalid_history_names_each_field_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    body = history_json("01")
    body["treatments"][0]["doses"][0]["mg_per_day"] = -50
    body["treatments"][1]["drug"] = "notarealdrug"
    created = client.post("/api/patients", json=body, headers=writer)
    assert created.status_code == 422
    assert problems(created) == {"treatments[0].doses[0].mg_per_day": "greater_than_equal"}
    assert client.get("/api/patients/EX01", headers=writer).status_code == 404

    body["treatments"][0]["doses"][0]["mg_per_day"] = 50
    unknown = client.post("/api/patients", json=body, headers=writer)
    assert unknown.status_code == 422
    assert list(problems(unknown)) == ["treatments[1].drug"]

    store_examples(db_url, kb, "01")
    replaced = client.put("/api/patients/EX01", json=body, headers={**writer, "If-Match": '"1"'})
    assert replaced.status_code == 422
    assert stored(db_url, "EX01")[1] == 1


def test_an_invalid_appended_item_is_reported_at_its_path_in_the_history(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    before = stored(db_url, "EX01")
    negative = {**BUPROPION_FAILED, "doses": [{"from": "2024-01-16", "mg_per_day": -1}]}
    response = client.post("/api/patients/EX01/treatments", json=negative, headers=writer)
    assert response.status_code == 422
    assert problems(response) == {"treatments[2].doses[0].mg_per_day": "greater_than_equal"}
    future = {**PHQ9_ITEM9_POSITIVE, "date": "2024-07-01"}
    response = client.post("/api/patients/EX01/measurements", json=future, headers=writer)
    assert response.status_code == 422
    assert list(problems(response)) == ["measurements[2].date"]
    response = client.post(
        "/api/patients/EX01/labs", json={"test": "TSH", "value": 2.1}, headers=writer
    )
    assert response.status_code == 422
    assert problems(response) == {"labs[0].unit": "missing", "labs[0].date": "missing"}
    response = client.post(
        "/api/patients/EX01/pgx",
        json={"gene": "CYP2D6", "phenotype": "poor", "x": 1},
        headers=writer,
    )
    assert problems(response) == {"pgx[0].x": "extra_forbidden"}
    response = client.post(
        "/api/patients/EX01/current-medications", json={"drug": ""}, headers=writer
    )
    assert problems(response) == {"current_medications[0].drug": "string_too_short"}
    assert stored(db_url, "EX01") == before


def test_a_body_that_is_not_json_is_refused_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    url = "/api/patients/EX01/labs"
    malformed = client.post(
        url, content=b"{test", headers={**writer, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert problems(malformed) == {"": "json_invalid"}
    empty = client.post(url, content=b"", headers={**writer, "Content-Type": "application/json"})
    assert problems(empty) == {"": "body_missing"}
    form = client.post(url, data={"test": "TSH"}, headers=writer)
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    not_a_mapping = client.post("/api/patients", json=[1, 2], headers=writer)
    assert problems(not_a_mapping) == {"": "not_a_mapping"}
    assert stored(db_url, "EX01")[1] == 1


def test_query_and_path_parameters_are_checked(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    too_many = client.get("/api/patients", params={"limit": 101}, headers=writer)
    assert too_many.status_code == 422 and "limit" in problems(too_many)
    assert client.get("/api/patients", params={"show": "nope"}, headers=writer).status_code == 422
    locale = client.get("/api/patients/EX01/assessment", params={"locale": "xx"}, headers=writer)
    assert problems(locale) == {"locale": "unknown_locale"}
    negative = client.delete("/api/patients/EX01/treatments/-1", headers=bearer_version(writer, 1))
    assert negative.status_code == 422 and "index" in problems(negative)
    assert client.get("/api/patients/NOPE", headers=writer).json()["error"]["code"] == (
        "patient_not_found"
    )


def bearer_version(headers: dict[str, str], version: int) -> dict[str, str]:
    return {**headers, "If-Match": f'"{version}"'}


# --- items of a record


def test_a_second_failed_adequate_trial_makes_the_depression_trd(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    before = client.get("/api/patients/EX01/assessment", headers=writer).json()
    assert before["trd"]["status"] == "not_trd"
    added = client.post("/api/patients/EX01/treatments", json=BUPROPION_FAILED, headers=writer)
    assert added.status_code == 201, added.text
    assert added.json()["item"] == "treatments[2]"
    assert added.json()["summary"]["trd_status"] == "trd"
    assert added.json()["summary"]["failed_trials"] == 2
    assert added.headers["ETag"] == '"2"'
    after = client.get("/api/patients/EX01/assessment", headers=writer).json()
    assert after["trd"]["status"] == "trd"
    assert client.get("/api/patients", headers=writer).json()["items"][0]["trd_status"] == "trd"


def test_a_measurement_with_a_positive_item_9_raises_a_suicide_risk_alert_first(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    added = client.post("/api/patients/EX01/measurements", json=PHQ9_ITEM9_POSITIVE, headers=writer)
    assert added.status_code == 201, added.text
    summary = added.json()["summary"]
    assert summary["suicide_risk"] is True
    assert summary["last_phq9"] == 16 and summary["last_phq9_date"] == "2024-05-27"
    assert summary["alerts"][0]["alert"]["code"] == "suicide_risk"
    assessment = client.get("/api/patients/EX01/assessment", headers=writer).json()
    assert list(assessment)[:2] == ["alerts", "crisis_resources"]
    assert assessment["alerts"][0]["code"] == "suicide_risk"
    assert assessment["crisis_resources"]


def test_labs_pgx_and_current_medications_are_appended_in_the_history_format(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    items = {
        "labs": {"test": "TSH", "value": 2.1, "unit": "mIU/L", "date": "2024-05-20"},
        "pgx": {"gene": "CYP2D6", "phenotype": "poor", "date": "2024-05-01"},
        "current-medications": {"drug": "carbamazepine", "mg_per_day": 400},
    }
    for version, (path, item) in enumerate(items.items(), start=1):
        response = client.post(
            f"/api/patients/EX01/{path}", json=item, headers=bearer_version(writer, version)
        )
        assert response.status_code == 201, (path, response.text)
        assert response.json()["version"] == version + 1
    history = client.get("/api/patients/EX01", headers=writer).json()["history"]
    assert history["labs"] == [items["labs"]]
    assert history["pgx"] == [items["pgx"]]
    assert history["current_medications"] == [{"drug": "carbamazepine", "mg_per_day": 400.0}]


def test_appending_checks_if_match_only_when_it_is_sent(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    assert (
        client.post(
            "/api/patients/EX01/measurements", json=PHQ9_ITEM9_POSITIVE, headers=writer
        ).status_code
        == 201
    )
    stale = client.post(
        "/api/patients/EX01/treatments", json=BUPROPION_FAILED, headers=bearer_version(writer, 1)
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "stale_record"
    history, version = stored(db_url, "EX01")
    assert version == 2 and len(history.treatments) == 2
    assert (
        client.post(
            "/api/patients/EX01/treatments",
            json=BUPROPION_FAILED,
            headers=bearer_version(writer, 2),
        ).status_code
        == 201
    )


def test_a_treatment_is_replaced_or_removed_by_index_at_a_named_version(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str]
) -> None:
    store_examples(db_url, kb, "01")
    url = "/api/patients/EX01/treatments/1"
    assert client.put(url, json=BUPROPION_FAILED, headers=writer).status_code == 428
    assert client.delete(url, headers=writer).status_code == 428
    replaced = client.put(url, json=BUPROPION_FAILED, headers=bearer_version(writer, 1))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["item"] == "treatments[1]"
    assert replaced.json()["summary"]["trd_status"] == "trd"
    history, version = stored(db_url, "EX01")
    assert version == 2 and history.treatments[1].drug == "bupropion"  # type: ignore[union-attr]

    assert client.delete(url, headers=bearer_version(writer, 1)).status_code == 412
    bad = client.put(
        url, json={**BUPROPION_FAILED, "adherence": 2}, headers=bearer_version(writer, 2)
    )
    assert problems(bad) == {"treatments[1].adherence": "less_than_equal"}
    beyond = client.delete("/api/patients/EX01/treatments/5", headers=bearer_version(writer, 2))
    assert beyond.status_code == 404
    assert beyond.json()["error"]["code"] == "treatment_not_found"
    assert stored(db_url, "EX01")[1] == 2

    removed = client.delete(url, headers=bearer_version(writer, 2))
    assert removed.status_code == 200
    history, version = stored(db_url, "EX01")
    assert version == 3 and len(history.treatments) == 1


# --- alerts, list, knowledge


def test_alerts_are_acknowledged_once_with_who_and_when_and_audited(
    client: TestClient, db_url: str, kb: Knowledge, writer: dict[str, str], reader: dict[str, str]
) -> None:
    store_examples(db_url, kb, "10")
    listed = client.get("/api/patients/EX10/alerts", headers=reader).json()
    assert listed["alerts"][0]["alert"]["code"] == "suicide_risk"
    assert listed["crisis_resources"]
    assert all(a["acknowledgement"] is None for a in listed["alerts"])
    key = listed["alerts"][0]["key"]
    open_before = client.get("/api/patients", headers=reader).json()["items"][0]["open_alerts"]

    url = f"/api/patients/EX10/alerts/{quote(key, safe='')}/acknowledge"
    first = client.post(url, headers=writer)
    assert first.status_code == 200, first.text
    ack = first.json()["acknowledgement"]
    assert ack["by"] == "clinician"
    at = datetime.fromisoformat(ack["at"])
    assert at.tzinfo is not None and abs(datetime.now(UTC) - at) < timedelta(minutes=5)
    again = client.post(url, headers=writer)
    assert again.json()["acknowledgement"]["by"] == "clinician"
    assert audit_actions(db_url).count("acknowledge_alert") == 1

    relisted = client.get("/api/patients/EX10/alerts", headers=reader).json()
    assert relisted["alerts"][0]["acknowledgement"]["by"] == "clinician"
    row = client.get("/api/patients", headers=reader).json()["items"][0]
    assert row["open_alerts"] == open_before - 1
    assert row["suicide_risk"] is True

    unknown = client.post("/api/patients/EX10/alerts/nope/acknowledge", headers=writer)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "alert_not_found"


def test_the_assessment_is_the_json_of_trdnav_assess(
    client: TestClient, db_url: str, kb: Knowledge, reader: dict[str, str]
) -> None:
    store_examples(db_url, kb, "03")
    got = client.get("/api/patients/EX03/assessment", headers=reader).json()
    history = History.model_validate(history_json("03"))
    expected = records.assess_as_of(history, kb, TODAY).model_dump(mode="json")
    assert got == expected


def test_the_list_pages_with_limit_and_offset_suicide_risk_first(
    client: TestClient, db_url: str, kb: Knowledge, reader: dict[str, str]
) -> None:
    names = [p.name[:2] for p in sorted(EXAMPLES.glob("*.yaml"))]
    store_examples(db_url, kb, *names)
    everyone = client.get("/api/patients", params={"limit": 100}, headers=reader).json()
    assert everyone["total"] == len(names) == len(everyone["items"])
    ids = [r["id"] for r in everyone["items"]]
    assert everyone["items"][0]["suicide_risk"] is True
    for limit, offset in ((5, 0), (7, 20), (30, 3), (10, 21), (4, 100)):
        page = client.get(
            "/api/patients", params={"limit": limit, "offset": offset}, headers=reader
        ).json()
        assert [r["id"] for r in page["items"]] == ids[offset : offset + limit], (limit, offset)
        assert page["total"] == len(names)
    found = client.get("/api/patients", params={"q": "x1"}, headers=reader).json()
    assert {r["id"] for r in found["items"]} == {i for i in ids if i.startswith("EX1")}
    trd = client.get("/api/patients", params={"show": "trd"}, headers=reader).json()
    assert trd["items"] and all(r["trd_status"] == "trd" for r in trd["items"])
    assert audit_actions(db_url).count("list") >= 8


def test_reads_and_writes_through_the_api_are_audited_as_the_tokens_user(
    client: TestClient, db_url: str, writer: dict[str, str]
) -> None:
    client.post("/api/patients", json=history_json("01"), headers=writer)
    client.get("/api/patients/EX01", headers=writer)
    client.post("/api/patients/EX01/treatments", json=BUPROPION_FAILED, headers=writer)
    # the append reads the record, then saves it whole
    assert audit_actions(db_url)[-4:] == ["create", "read", "read", "update"]
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            who = set(
                session.scalars(select(m.AuditEvent.who).where(m.AuditEvent.entity_id == "EX01"))
            )
    finally:
        engine.dispose()
    assert who == {"clinician"}


def test_instruments_and_drugs_come_from_the_knowledge_base(
    client: TestClient, kb: Knowledge, reader: dict[str, str]
) -> None:
    instruments = client.get("/api/instruments", headers=reader).json()
    assert instruments["kb_version"] == kb.kb_version
    assert {i["id"] for i in instruments["instruments"]} == set(kb.instruments)
    drugs = client.get("/api/drugs", headers=reader).json()
    assert {d["id"] for d in drugs["drugs"]} == set(kb.drugs)
    sertraline = next(d for d in drugs["drugs"] if d["id"] == "sertraline")
    assert sertraline == kb.drugs["sertraline"].model_dump(mode="json")
