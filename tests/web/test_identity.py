"""Patient identity in the clinic app: the list shows and searches it, the page shows it in its
header, the identity form stores it (problems beside their fields, stale versions refused, writers
with a CSRF token only), every read of it is audited, and the API returns it only when asked.

These run on SQLite only (``db_url`` below) to keep the suite quick; the store's identity code runs
on both engines in tests/storage/test_identity*.py.
"""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from trdnav.identity import Identifier, PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.identity import ENTITY, load_identity_record, save_identity
from trdnav.storage.migrations import upgrade

from .conftest import signed_in, store_examples
from .test_forms import field_error, marked_invalid, open_form

JANE = PatientIdentity(
    given=("Jane", "Quinn"),
    family="Sampleton",
    birth_date=date(1981, 4, 12),
    mrn="MRN-0042",
    identifiers=(Identifier(system="urn:demo:nhs", value="943 476 5919", type="NH"),),
)
JOHN = PatientIdentity(given=("John",), family="Testwood", mrn="MRN-0077")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database (overrides the two-engine fixture for this module)."""
    url = f"sqlite:///{tmp_path / 'trdnav.db'}"
    upgrade(url)
    return url


def put_identity(db_url: str, patient_id: str, identity: PatientIdentity) -> None:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            save_identity(session, patient_id, identity, user="fixture")
    finally:
        engine.dispose()


def stored_identity(db_url: str, patient_id: str) -> tuple[PatientIdentity | None, int]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            return load_identity_record(session, patient_id, user="test")
    finally:
        engine.dispose()


def identity_events(app: FastAPI, who: str) -> list[tuple[str, str | None]]:
    with make_sessionmaker(app.state.engine)() as db:
        rows = db.scalars(
            select(m.AuditEvent)
            .where(m.AuditEvent.entity == ENTITY, m.AuditEvent.who == who)
            .order_by(m.AuditEvent.id)
        )
        return [(e.action, e.entity_id) for e in rows]


def test_the_list_shows_name_birth_date_and_mrn_and_searches_them(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    ex10, ex01, ex02 = store_examples(db_url, kb, "10", "01", "02")
    put_identity(db_url, ex10, JANE)
    put_identity(db_url, ex01, JOHN)
    signed_in(client, "reader")
    text = client.get("/patients").text
    for shown in ("SAMPLETON, Jane Quinn", "1981-04-12", "MRN-0042", "TESTWOOD, John"):
        assert shown in text
    assert "no name recorded" in text  # EX02 has none
    assert text.index("SAMPLETON, Jane Quinn") < text.index("TESTWOOD, John")  # EX10 first

    def found(q: str) -> set[str]:
        page = client.get("/patients", params={"q": q}).text
        return {pid for pid in (ex10, ex01, ex02) if f'href="/patients/{pid}"' in page}

    assert found("sampleton") == {ex10}
    assert found("Sampleton, Jane") == {ex10}  # the list's own spelling of the name
    assert found("jane testwood") == set()  # every word must match the same patient
    assert found("mrn-0077") == {ex01}
    assert found("476 5919") == {ex10}  # another identifier
    assert found("1981-04-12") == {ex10}
    assert found(ex02) == {ex02}  # the clinic identifier as before
    partial = client.get("/patients", params={"q": "testw"}, headers={"HX-Request": "true"})
    assert "TESTWOOD, John" in partial.text and "<html" not in partial.text
    # each identity shown is audited for the patient (EX02 has none), never the search term
    assert identity_events(app, "reader")[:2] == [("list", ex10), ("list", ex01)]
    assert ("list", ex02) not in identity_events(app, "reader")
    with make_sessionmaker(app.state.engine)() as db:
        ids = set(db.scalars(select(m.AuditEvent.entity_id)))
    assert not {"sampleton", "Sampleton, Jane", "mrn-0077", "testw"} & ids


def test_the_patient_page_shows_identity_in_its_header(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    ex10, ex01 = store_examples(db_url, kb, "10", "01")
    put_identity(db_url, ex10, JANE)
    signed_in(client, "reader")
    page = client.get(f"/patients/{ex10}").text
    line = re.search(r'<p class="identity-line" id="identity">(.*?)</p>', page, re.S)
    assert line is not None
    for shown in ("SAMPLETON, Jane Quinn", "DOB 1981-04-12", "MRN MRN-0042", "NH 943 476 5919"):
        assert shown in line.group(1)
    assert "/identity" not in line.group(1)  # a reader gets no edit link
    assert page.index("SAMPLETON, Jane Quinn") < page.index("Suicide-risk signal")
    assert "SAMPLETON" not in page[: page.index("</title>")]  # not in the window title
    assert ("read", ex10) in identity_events(app, "reader")
    signed_in(client, "clinician")
    none = client.get(f"/patients/{ex01}").text
    assert "No name, date of birth or MRN recorded." in none
    assert f'href="/patients/{ex01}/identity">Add identity' in none
    # a date of birth other than the record's (which age-based rules read) is pointed out
    put_identity(db_url, ex10, JANE.model_copy(update={"birth_date": date(1950, 1, 1)}))
    assert "the record's date of birth is 1988-11-05" in client.get(f"/patients/{ex10}").text


def test_the_form_stores_typed_identity_and_the_page_shows_it(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (ex01,) = store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    url = f"/patients/{ex01}/identity"
    sent = open_form(client, url) | {
        "given": " Jane   Quinn ",
        "family": "Sampleton",
        "birth_date": "1981-04-12",
        "mrn": "MRN-0042",
        "identifiers[0].type": "NH",
        "identifiers[0].system": "urn:demo:nhs",
        "identifiers[0].value": "943 476 5919",
        "identifiers[1].type": "",
        "identifiers[1].value": "",
    }
    assert sent["version"] == "0"
    response = client.post(url, data=sent)
    assert response.status_code == 303 and response.headers["location"] == f"/patients/{ex01}"
    assert stored_identity(db_url, ex01) == (JANE, 1)
    assert ("create", ex01) in identity_events(app, "clinician")
    again = client.get(url).text  # reopened: the stored values, version 1
    assert 'value="Jane Quinn"' in again and 'name="version" value="1"' in again
    assert 'value="943 476 5919"' in again
    assert "SAMPLETON, Jane Quinn" in client.get(f"/patients/{ex01}").text


def test_form_problems_are_shown_beside_their_fields_and_store_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    ex10, ex01 = store_examples(db_url, kb, "10", "01")
    put_identity(db_url, ex10, JANE)
    signed_in(client, "clinician")
    url = f"/patients/{ex01}/identity"
    sent = open_form(client, url) | {
        "family": "Testwood",
        "birth_date": "2031-02-03",
        "mrn": "mrn-0042",  # EX10's, in other case
        "identifiers[0].type": "PPN",
        "identifiers[0].value": "",
        "identifiers[3].value": "X1",
        "identifiers[4].value": "x1",
    }
    page = client.post(url, data=sent)
    assert page.status_code == 422
    text = page.text
    assert "after today (2024-06-01)" in field_error(text, "f-birth_date")
    assert marked_invalid(text, "f-birth_date")
    assert field_error(text, "f-mrn") == f"this MRN is already recorded for patient {ex10}"
    assert field_error(text, "f-identifiers-0-value") == "enter the identifier's value"
    assert "listed twice" in field_error(text, "f-identifiers-4-value")  # its own form row
    assert 'value="Testwood"' in text and 'value="PPN"' in text  # what was typed is kept
    assert "Nothing was stored" in text
    assert stored_identity(db_url, ex01) == (None, 0)
    bad_date = client.post(url, data={**sent, "birth_date": "12/04/1981"})
    assert "YYYY-MM-DD" in field_error(bad_date.text, "f-birth_date")


def test_a_stale_form_or_one_without_its_csrf_token_or_role_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (ex10,) = store_examples(db_url, kb, "10")
    signed_in(client, "clinician")
    url = f"/patients/{ex10}/identity"
    opened = open_form(client, url)
    put_identity(db_url, ex10, JOHN)  # someone else saved meanwhile
    page = client.post(url, data=opened | {"family": "Sampleton"})
    assert page.status_code == 409
    assert "Someone else saved this record" in page.text and 'value="Sampleton"' in page.text
    assert stored_identity(db_url, ex10) == (JOHN, 1)
    assert client.post(url, data={"family": "X", "version": "1"}).status_code == 403  # no CSRF
    assert client.get("/patients/NOPE/identity").status_code == 404
    signed_in(client, "reader")
    assert client.get(url).status_code == 403
    assert client.post(url, data={"family": "X", "version": "1"}).status_code == 403
    assert stored_identity(db_url, ex10) == (JOHN, 1)


def test_the_api_returns_identity_only_when_asked(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    (ex10,) = store_examples(db_url, kb, "10")
    put_identity(db_url, ex10, JANE)
    csrf = signed_in(client, "reader")
    headers = {"X-CSRF-Token": csrf}
    plain = client.get(f"/api/patients/{ex10}", headers=headers)
    assert plain.status_code == 200 and "identity" not in plain.json()
    assert "Sampleton" not in plain.text
    asked = client.get(f"/api/patients/{ex10}", params={"with_identity": "true"}, headers=headers)
    assert asked.status_code == 200
    assert PatientIdentity.model_validate(asked.json()["identity"]) == JANE
    assert identity_events(app, "reader").count(("read", ex10)) == 1
    listed = client.get("/api/patients", params={"q": "Sampleton"}, headers=headers).json()
    assert listed["total"] == 0  # the API's list searches the clinic identifier only


def test_the_printed_summary_and_the_course_pages_carry_the_identity(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    """A page printed or opened from the patient (treatment summary, course pages, course
    summary) names the patient as the patient page does, and each is an audited read."""
    from pypdf import PdfReader

    from .test_courses import active_course

    ex10, ex01 = store_examples(db_url, kb, "10", "01")
    put_identity(db_url, ex10, JANE)
    signed_in(client, "reader")
    summary = client.get(f"/patients/{ex10}/summary").text
    row = re.search(r'<tr class="identity">(.*?)</tr>', summary, re.S)
    assert row is not None
    assert "SAMPLETON, Jane Quinn" in row.group(1) and "MRN-0042" in row.group(1)
    assert "SAMPLETON" not in summary[: summary.index("</title>")]  # not in the title
    pdf = client.get(f"/patients/{ex10}/summary.pdf")
    assert pdf.status_code == 200
    first = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "SAMPLETON, Jane Quinn" in first and "MRN-0042" in first
    assert '<tr class="identity">' not in client.get(f"/patients/{ex01}/summary").text

    course = active_course(db_url, kb, ex10, "esketamine")
    for path in ("", "/sessions/new"):
        page = client.get(f"/courses/{course.id}{path}")
        if page.status_code == 403:  # a reader may not open the session form
            continue
        line = re.search(r'<p class="identity-line" id="identity">(.*?)</p>', page.text, re.S)
        assert line is not None, path
        assert "SAMPLETON, Jane Quinn" in line.group(1) and "MRN MRN-0042" in line.group(1)
    course_pdf = client.get(f"/courses/{course.id}/summary.pdf")
    assert course_pdf.status_code == 200
    text = PdfReader(io.BytesIO(course_pdf.content)).pages[0].extract_text()
    assert "SAMPLETON, Jane Quinn" in text and "MRN-0042" in text
    reads = [e for e in identity_events(app, "reader") if e == ("read", ex10)]
    assert len(reads) >= 4  # summary, PDF, course page, course PDF

    other = active_course(db_url, kb, ex01, "esketamine")
    assert 'id="identity"' not in client.get(f"/courses/{other.id}").text
