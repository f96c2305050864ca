"""Course pages on both databases: start, the eligibility gate, sessions, conflicts, outcomes.

Each test acts as a clinician through the forms (CSRF token, the course version in a hidden
field) and checks what was stored with the course store itself.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from trdnav.core.courses.model import Course, Eligibility
from trdnav.knowledge.load import Knowledge
from trdnav.storage import courses as store
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine, make_sessionmaker

from .conftest import TODAY, signed_in, store_examples

COURSE_URL = re.compile(r"/courses/(C-[0-9A-F]+)")


PROTOCOLS = {
    "esketamine": "esketamine_trd",
    "ketamine": "ketamine_iv",
    "rtms": "rtms_10hz",
    "ect": "ect_rul_ultrabrief",
}


def protocol_id(kb: Knowledge, treatment: str) -> str:
    """The packaged protocol used for ``treatment`` here (esketamine per label, IV ketamine)."""
    pid = PROTOCOLS.get(treatment) or next(
        p.id for p in sorted(kb.protocols.values(), key=lambda p: p.id) if p.treatment == treatment
    )
    assert pid in kb.protocols
    return pid


def stored(db_url: str, course_id: str) -> tuple[Course, int]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as db:
            return store.load_course(db, course_id)
    finally:
        engine.dispose()


def audit(db_url: str, course_id: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as db:
            return list(
                db.scalars(
                    select(m.AuditEvent.action)
                    .where(m.AuditEvent.entity == "course", m.AuditEvent.entity_id == course_id)
                    .order_by(m.AuditEvent.id)
                )
            )
    finally:
        engine.dispose()


def put_course(db_url: str, course: Course) -> None:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as db:
            store.save_course(db, course, "fixture", 0)
    finally:
        engine.dispose()


def active_course(db_url: str, kb: Knowledge, patient_id: str, treatment: str) -> Course:
    """An active course that passed its review (stored directly: the gate is tested below)."""
    now = datetime(2024, 5, 31, 9, 0, tzinfo=UTC)
    course = Course(
        id=store.new_course_id(),
        patient_id=patient_id,
        protocol_id=protocol_id(kb, treatment),
        treatment=treatment,  # type: ignore[arg-type]
        start=TODAY,
        status="active",
        weight_kg=80,
        eligibility=Eligibility(
            reviewed_by="fixture",
            reviewed_at=now,
            findings_reviewed=(),
            consent_recorded_by="fixture",
            consent_on=date(2024, 5, 31),
        ),
    )
    put_course(db_url, course)
    return course


def form(csrf: str, version: int, **fields: Any) -> dict[str, str]:
    return {"csrf_token": csrf, "version": str(version), **{k: str(v) for k, v in fields.items()}}


def esketamine_session(number: int, systolic: int, diastolic: int) -> dict[str, str]:
    on = TODAY.isoformat()
    return {
        "number": str(number),
        "on": on,
        "pre_vitals.at": "09:00",
        "pre_vitals.systolic": str(systolic),
        "pre_vitals.diastolic": str(diastolic),
        "pre_vitals.heart_rate": "72",
        "pre_vitals.spo2": "98",
        "dose_mg": "56",
        "route": "intranasal",
        "dose_time": "09:10",
        "post_vitals.0.minutes_after_dose": "40",
        "post_vitals.0.at": "09:50",
        "post_vitals.0.systolic": "130",
        "post_vitals.0.diastolic": "82",
        "post_vitals.0.heart_rate": "75",
        "observed_until": "11:15",
        "transport": "driven home by her partner",
    }


# --- starting a course ------------------------------------------------------------------------


def test_the_start_page_lists_the_protocols_with_off_label_ones_marked(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    signed_in(client, "clinician")
    page = client.get(f"/patients/{pid}/courses/new")
    assert page.status_code == 200
    for p in kb.protocols.values():
        assert f'value="{p.id}"' in page.text
    assert "off-label" in page.text


def test_a_course_without_a_protocol_is_refused_with_the_values_kept(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    data = {"csrf_token": csrf, "protocol_id": "", "start": "2024-13-40", "weight_kg": "81"}
    page = client.post(f"/patients/{pid}/courses/new", data=data)
    assert page.status_code == 422
    assert "Nothing was stored" in page.text
    assert 'value="81"' in page.text
    assert client.get(f"/api/patients/{pid}/courses").json()["items"] == []


def test_a_planned_course_goes_to_its_eligibility_review(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    data = {"csrf_token": csrf, "protocol_id": protocol_id(kb, "ketamine"), "start": "2024-06-03"}
    data["weight_kg"] = "82"
    response = client.post(f"/patients/{pid}/courses/new", data=data)
    assert response.status_code == 303
    found = COURSE_URL.search(response.headers["location"])
    assert found and response.headers["location"].endswith("/eligibility")
    course, version = stored(db_url, found.group(1))
    assert course.status == "planned" and course.weight_kg == 82 and version == 1
    listing = client.get(f"/patients/{pid}/courses", headers={"HX-Request": "true"})
    assert found.group(1) in listing.text and "planned" in listing.text


# --- the eligibility gate ---------------------------------------------------------------------


def test_a_contraindication_blocks_until_overridden_with_a_written_reason(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "14")  # an aneurysm: esketamine is contraindicated
    csrf = signed_in(client, "clinician")
    data = {"csrf_token": csrf, "protocol_id": protocol_id(kb, "esketamine"), "start": "2024-06-03"}
    cid = COURSE_URL.search(
        client.post(f"/patients/{pid}/courses/new", data=data).headers["location"]
    ).group(1)  # type: ignore[union-attr]
    page = client.get(f"/courses/{cid}/eligibility")
    assert page.status_code == 200
    assert "badge-contraindicated" in page.text and "cannot start" in page.text
    code = re.search(r'name="code" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]

    # consent recorded, but the contraindication still blocks
    ok = client.post(f"/courses/{cid}/eligibility", data=form(csrf, 1, consent_on="2024-06-01"))
    assert ok.status_code == 303
    refused = client.post(f"/courses/{cid}/start", data=form(csrf, 2))
    assert refused.status_code == 422
    assert stored(db_url, cid)[0].status == "planned"

    short = client.post(f"/courses/{cid}/overrides", data=form(csrf, 2, code=code, reason="ok"))
    assert short.status_code == 422 and "at least 10 characters" in short.text
    assert stored(db_url, cid)[1] == 2

    reason = "Aneurysm repaired 2019; cleared by cardiology for esketamine."
    done = client.post(f"/courses/{cid}/overrides", data=form(csrf, 2, code=code, reason=reason))
    assert done.status_code == 303
    course, version = stored(db_url, cid)
    assert course.eligibility and course.eligibility.overrides[0].reason == reason
    assert course.eligibility.overrides[0].by == "clinician"
    assert "course_override" in audit(db_url, cid)
    page = client.get(f"/courses/{cid}/eligibility")
    assert "Overridden" in page.text and reason in page.text
    # cautions, if any, are acknowledged before the course can start
    cautions = re.findall(r'name="ack" value="([^"]+)"', page.text)
    fields: dict[str, Any] = {"csrf_token": csrf, "version": str(version)}
    fields |= {"consent_on": "2024-06-01", "ack": cautions}
    assert client.post(f"/courses/{cid}/eligibility", data=fields).status_code == 303
    started = client.post(f"/courses/{cid}/start", data=form(csrf, version + 1))
    assert started.status_code == 303, started.text
    assert stored(db_url, cid)[0].status == "active"


def test_no_session_can_be_recorded_before_the_course_starts(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine").model_copy(
        update={"id": store.new_course_id(), "status": "planned"}
    )
    put_course(db_url, course)
    data = form(csrf, 1, **esketamine_session(1, 120, 80))
    page = client.post(f"/courses/{course.id}/sessions", data=data)
    assert page.status_code == 422
    assert stored(db_url, course.id) == (course, 1)


# --- sessions ---------------------------------------------------------------------------------


def test_high_pre_dose_blood_pressure_defers_an_esketamine_session(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    page = client.post(
        f"/courses/{course.id}/sessions", data=form(csrf, 1, **esketamine_session(1, 150, 95))
    )
    assert page.status_code == 200
    assert "Session deferred" in page.text
    saved, version = stored(db_url, course.id)
    assert [s.status for s in saved.sessions] == ["deferred"] and version == 2

    # the clinician overrides with a written reason: stored as done, audited
    values = {
        **esketamine_session(1, 150, 95),
        "override_reason": "Repeat reading 138/88 after rest.",
    }
    page = client.post(f"/courses/{course.id}/sessions", data=form(csrf, 2, **values))
    assert page.status_code == 200 and "Session deferred" not in page.text
    saved, _ = stored(db_url, course.id)
    assert [s.status for s in saved.sessions] == ["deferred", "done"]
    assert saved.sessions[1].overrides and saved.sessions[1].overrides[0].by == "clinician"
    assert "course_override" in audit(db_url, course.id)


def test_a_normal_session_is_recorded_and_a_second_record_of_it_refused(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    data = form(csrf, 1, **esketamine_session(1, 128, 80))
    page = client.post(f"/courses/{course.id}/sessions", data=data)
    assert page.status_code == 200 and "Session 1 recorded" in page.text
    again = client.post(
        f"/courses/{course.id}/sessions", data=form(csrf, 2, **esketamine_session(1, 128, 80))
    )
    assert again.status_code == 422 and "recorded already" in again.text
    assert stored(db_url, course.id)[1] == 2


def test_vitals_out_of_range_are_shown_at_their_field_and_nothing_is_stored(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    values = {**esketamine_session(1, 400, 80), "post_vitals.0.heart_rate": "7"}
    page = client.post(f"/courses/{course.id}/sessions", data=form(csrf, 1, **values))
    assert page.status_code == 422
    assert 'id="f-pre_vitals-systolic-error"' in page.text
    assert 'id="f-post_vitals-0-heart_rate-error"' in page.text
    assert 'value="400"' in page.text  # the values are kept
    assert stored(db_url, course.id) == (course, 1)


def test_a_post_dose_reading_before_the_dose_is_refused(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "esketamine")
    values = {**esketamine_session(1, 120, 80), "post_vitals.0.at": "08:30"}
    page = client.post(f"/courses/{course.id}/sessions", data=form(csrf, 1, **values))
    assert page.status_code == 422
    assert stored(db_url, course.id) == (course, 1)


def test_a_form_opened_before_someone_elses_save_is_refused(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "ketamine")
    note = form(csrf, 1, kind="integration", on="2024-06-01", text="Integration went well.")
    assert client.post(f"/courses/{course.id}/notes", data=note).status_code == 303
    stale = client.post(f"/courses/{course.id}/notes", data=note)
    assert stale.status_code == 409
    saved, version = stored(db_url, course.id)
    assert len(saved.notes) == 1 and version == 2


def test_a_session_is_rescheduled_and_another_marked_missed(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "ketamine")
    moved = client.post(
        f"/courses/{course.id}/sessions/2/reschedule", data=form(csrf, 1, on="2024-06-14")
    )
    assert moved.status_code == 303
    missed = client.post(
        f"/courses/{course.id}/sessions/1/missed", data=form(csrf, 2, on="2024-06-03")
    )
    assert missed.status_code == 303
    saved, _ = stored(db_url, course.id)
    assert saved.rescheduled == {2: date(2024, 6, 14)}
    assert [(s.number, s.status) for s in saved.sessions] == [(1, "missed")]
    page = client.get(f"/courses/{course.id}")
    assert page.status_code == 200 and "2024-06-14" in page.text and "missed" in page.text


def test_the_course_page_shows_the_schedule_tasks_and_documents(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    signed_in(client, "reader")
    course = active_course(db_url, kb, pid, "esketamine")
    page = client.get(f"/courses/{course.id}")
    assert page.status_code == 200
    assert 'id="schedule"' in page.text and "/rems.csv" in page.text
    assert "/sessions/new" not in page.text  # a reader sees no write actions
    assert client.get(f"/courses/{course.id}/rems.csv").status_code == 200
    assert client.get(f"/courses/{course.id}/chart.svg").status_code in (200, 204)
    assert client.get("/courses/C-NONE").status_code == 404


def test_the_outcomes_page_lists_rates_by_treatment(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    signed_in(client, "reader")
    active_course(db_url, kb, pid, "ketamine")
    page = client.get("/courses/outcomes")
    assert page.status_code == 200 and 'id="outcomes"' in page.text


def test_the_course_summary_opens_as_a_pdf(client: TestClient, db_url: str, kb: Knowledge) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    signed_in(client, "reader")
    course = active_course(db_url, kb, pid, "esketamine")
    pdf = client.get(f"/courses/{course.id}/summary.pdf")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert audit(db_url, course.id)[-1] == "read"


def test_the_patient_page_links_to_the_courses_and_writers_may_start_one(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    signed_in(client, "clinician")
    page = client.get(f"/patients/{pid}")
    assert f'hx-get="/patients/{pid}/courses"' in page.text
    assert f'href="/patients/{pid}/courses/new"' in page.text
    client.cookies.clear()
    signed_in(client, "reader")
    page = client.get(f"/patients/{pid}")
    assert f'href="/patients/{pid}/courses"' in page.text
    assert f'href="/patients/{pid}/courses/new"' not in page.text
    assert client.get(f"/patients/{pid}/courses").status_code == 200


def test_an_rtms_session_records_its_device_parameters(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "rtms")
    page = client.get(f"/courses/{course.id}/sessions/new?number=1")
    assert page.status_code == 200
    assert (
        'name="motor_threshold_pct"' in page.text and 'name="pre_vitals.systolic"' not in page.text
    )
    checks = {f"pre_checks.{c.id}": "on" for c in kb.protocols[course.protocol_id].pre_checks}
    values = {
        "number": "1",
        "on": "2024-06-03",
        "route": "transcranial",
        "motor_threshold_pct": "55",
        "intensity_pct_mt": "120",
        "coil_site": "left DLPFC (Beam F3)",
        "pulses": "3000",
        **checks,
    }
    done = client.post(f"/courses/{course.id}/sessions", data=form(csrf, 1, **values))
    assert done.status_code == 200, done.text
    saved, _ = stored(db_url, course.id)
    record = saved.sessions[0]
    assert (record.status, record.pulses, record.intensity_pct_mt) == ("done", 3000, 120)
    assert all(record.pre_checks.values())


def test_an_ect_session_records_anaesthesia_seizure_and_reorientation(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    csrf = signed_in(client, "clinician")
    course = active_course(db_url, kb, pid, "ect")
    protocol = kb.protocols[course.protocol_id]
    page = client.get(f"/courses/{course.id}/sessions/new?number=1")
    assert page.status_code == 200 and 'name="seizure_seconds"' in page.text
    values = {
        "number": "1",
        "on": "2024-06-03",
        "route": protocol.routes[0],
        "pre_vitals.at": "08:30",
        "pre_vitals.systolic": "130",
        "pre_vitals.diastolic": "80",
        "pre_vitals.heart_rate": "70",
        "electrode_placement": "rul",
        "stimulus_dose_mc": "300",
        "seizure_seconds": "35",
        "anaesthesia": "methohexital, suxamethonium",
        "reorientation_minutes": "20",
        "cognitive_check": "oriented x3",
    }
    done = client.post(f"/courses/{course.id}/sessions", data=form(csrf, 1, **values))
    assert done.status_code == 200, done.text
    record = stored(db_url, course.id)[0].sessions[0]
    assert (record.electrode_placement, record.seizure_seconds) == ("rul", 35)
    bad = client.post(
        f"/courses/{course.id}/sessions",
        data=form(csrf, 2, **{**values, "number": "2", "seizure_seconds": "-3"}),
    )
    assert bad.status_code == 422 and 'id="f-seizure_seconds-error"' in bad.text
