"""The course API on both databases: the same operations as the pages, in the API's shape."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples
from .test_courses import active_course, audit, esketamine_session, protocol_id, stored


def api_session(number: int, systolic: int, diastolic: int) -> dict[str, Any]:
    f = esketamine_session(number, systolic, diastolic)
    on = f["on"]
    return {
        "number": number,
        "on": on,
        "pre_vitals": {
            "at": f"{on}T09:00",
            "systolic": systolic,
            "diastolic": diastolic,
            "heart_rate": 72,
            "spo2": 98,
        },
        "dose_mg": 56,
        "route": "intranasal",
        "dose_time": f"{on}T09:10",
        "post_vitals": [
            {
                "at": f"{on}T09:50",
                "minutes_after_dose": 40,
                "systolic": 130,
                "diastolic": 82,
                "heart_rate": 75,
            }
        ],
        "observed_until": f"{on}T11:15",
        "transport": "driven home",
    }


def headers(csrf: str, version: int | None = None) -> dict[str, str]:
    out = {"X-CSRF-Token": csrf}
    if version is not None:
        out["If-Match"] = f'"{version}"'
    return out


def test_a_course_is_planned_read_and_listed(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    body = {"protocol_id": protocol_id(kb, "ketamine"), "start": "2024-06-03", "weight_kg": 82}
    created = client.post(f"/api/patients/{pid}/courses", json=body, headers=headers(csrf))
    assert created.status_code == 201, created.text
    cid = created.json()["course"]["id"]
    assert created.headers["Location"] == f"/api/courses/{cid}"
    read = client.get(f"/api/courses/{cid}")
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
    assert read.json()["course"]["status"] == "planned"
    listed = client.get(f"/api/patients/{pid}/courses").json()
    assert [c["course"]["id"] for c in listed["items"]] == [cid]


def test_bad_input_names_its_field_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    body = {"protocol_id": "no_such_protocol", "start": "2024-06-03", "weight_kg": 5}
    refused = client.post(f"/api/patients/{pid}/courses", json=body, headers=headers(csrf))
    assert refused.status_code == 422
    locs = {p["loc"] for p in refused.json()["error"]["problems"]}
    assert {"protocol_id", "weight_kg"} <= locs
    assert client.get(f"/api/patients/{pid}/courses").json()["items"] == []


def test_a_session_needs_the_version_read_and_a_stale_one_is_refused(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    url = f"/api/courses/{course.id}/sessions"
    body: dict[str, Any] = {"record": api_session(1, 128, 80)}
    assert client.post(url, json=body, headers=headers(csrf)).status_code == 422
    ok = client.post(url, json={**body, "version": 1}, headers=headers(csrf))
    assert ok.status_code == 201, ok.text
    assert ok.json()["record"]["status"] == "done" and ok.headers["ETag"] == '"2"'
    stale = {"record": api_session(2, 128, 80), "version": 1}
    assert client.post(url, json=stale, headers=headers(csrf)).status_code == 412
    twice = client.post(url, json={**body, "version": 2}, headers=headers(csrf))
    assert twice.status_code == 422
    assert twice.json()["error"]["problems"][0]["loc"] == "record.number"
    assert stored(db_url, course.id)[1] == 2


def test_changing_a_course_needs_if_match(client: TestClient, db_url: str, kb: Knowledge) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "ketamine")
    url = f"/api/courses/{course.id}"
    body = {"plan_after": "maintenance", "rescheduled": {"2": "2024-06-14"}}
    assert client.put(url, json=body, headers=headers(csrf)).status_code == 428
    assert client.put(url, json=body, headers=headers(csrf, 7)).status_code == 412
    ok = client.put(url, json=body, headers=headers(csrf, 1))
    assert ok.status_code == 200, ok.text
    saved, version = stored(db_url, course.id)
    assert saved.plan_after == "maintenance" and saved.rescheduled == {2: date(2024, 6, 14)}
    assert version == 2


def test_a_high_blood_pressure_defers_the_session(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    answer = client.post(
        f"/api/courses/{course.id}/sessions",
        json={"record": api_session(1, 150, 95), "version": 1},
        headers=headers(csrf),
    )
    assert answer.status_code == 201
    out = answer.json()
    assert out["record"]["status"] == "deferred" and out["evaluation"]["deferred"] is True
    assert any(f["severity"] == "block" for f in out["evaluation"]["findings"])


def test_out_of_range_vitals_are_refused_at_their_path(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    record = api_session(1, 128, 80)
    record["pre_vitals"]["systolic"] = 400
    answer = client.post(
        f"/api/courses/{course.id}/sessions",
        json={"record": record, "version": 1},
        headers=headers(csrf),
    )
    assert answer.status_code == 422
    locs = [p["loc"] for p in answer.json()["error"]["problems"]]
    assert "record.pre_vitals.systolic" in locs
    assert stored(db_url, course.id) == (course, 1)


def test_the_gate_overrides_and_notes_through_the_api(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "14")
    csrf = signed_in(client, "clinician")
    body = {"protocol_id": protocol_id(kb, "esketamine"), "start": "2024-06-03"}
    cid = client.post(f"/api/patients/{pid}/courses", json=body, headers=headers(csrf)).json()[
        "course"
    ]["id"]
    gate = client.get(f"/api/courses/{cid}/eligibility").json()
    assert gate["decision"]["can_start"] is False
    contra = [f for f in gate["findings"] if f["severity"] == "contraindicated"]
    assert contra
    short = {"code": contra[0]["code"], "reason": "short", "version": 1}
    assert (
        client.post(f"/api/courses/{cid}/overrides", json=short, headers=headers(csrf)).status_code
        == 422
    )
    for i, f in enumerate(contra):
        reason = {"code": f["code"], "reason": "Cleared by cardiology after review."}
        reason["version"] = 1 + i
        assert (
            client.post(
                f"/api/courses/{cid}/overrides", json=reason, headers=headers(csrf)
            ).status_code
            == 200
        )
    version = 1 + len(contra)
    cautions = [f["code"] for f in gate["findings"] if f["severity"] == "caution"]
    review = {"acknowledged": cautions, "consent_on": "2024-06-01", "version": version}
    started = client.post(
        f"/api/courses/{cid}/eligibility?start=true", json=review, headers=headers(csrf)
    )
    assert started.status_code == 200, started.text
    assert stored(db_url, cid)[0].status == "active"
    assert audit(db_url, cid).count("course_override") == len(contra)
    note = {"kind": "health_coaching", "on": "2024-06-05", "text": "Sleep routine agreed."}
    note["version"] = version + 2
    added = client.post(f"/api/courses/{cid}/notes", json=note, headers=headers(csrf))
    assert added.status_code == 201, added.text
    assert added.json()["course"]["notes"][0]["by"] == "clinician"


def test_a_reader_reads_but_cannot_write(client: TestClient, db_url: str, kb: Knowledge) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "reader")
    course = active_course(db_url, kb, pid, "ketamine")
    assert client.get(f"/api/courses/{course.id}").status_code == 200
    assert client.get("/api/courses/outcomes").status_code == 200
    note = {"kind": "other", "on": "2024-06-05", "text": "x", "version": 1}
    refused = client.post(f"/api/courses/{course.id}/notes", json=note, headers=headers(csrf))
    assert refused.status_code == 403
    assert client.get("/api/courses/C-NONE").status_code == 404
