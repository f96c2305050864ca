"""The audit log: every read and write of patient data, append-only, shown to admins only; and
the application log, which never holds patient data.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker

from .conftest import signed_in
from .test_roles import POLICY, READ, World, build_world, make_app, session_for

IP = "testclient"  # the client address Starlette's TestClient reports


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    application = make_app(db_url, kb)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def world(app: FastAPI, db_url: str, kb: Knowledge, monkeypatch: pytest.MonkeyPatch) -> World:
    from trdnav.web.routes import documents

    monkeypatch.setattr(documents, "render_pdf_in_child", lambda _html: b"%PDF-1.7 stand-in")
    return build_world(app, db_url, kb)


def last_event_id(app: FastAPI) -> int:
    with make_sessionmaker(app.state.engine)() as db:
        return db.scalar(select(func.max(m.AuditEvent.id))) or 0


def events_since(app: FastAPI, after: int) -> list[m.AuditEvent]:
    with make_sessionmaker(app.state.engine)() as db:
        query = select(m.AuditEvent).where(m.AuditEvent.id > after).order_by(m.AuditEvent.id)
        return list(db.scalars(query))


def utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def audited(
    app: FastAPI, after: int, started: datetime, who: str, action: str, entity_id: str | None
) -> list[m.AuditEvent]:
    """The events since ``after`` by ``who`` with ``action`` on ``entity_id``, from IP, timed."""
    found = [
        e
        for e in events_since(app, after)
        if (e.who, e.action, e.entity_id, e.ip) == (who, action, entity_id, IP)
    ]
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert all(started - timedelta(seconds=1) <= utc(e.at) <= now for e in found)
    return found


# --- reads and writes leave events ------------------------------------------------------------

# reads that need a query to answer at all (a payer's criteria need the payer and the treatment)
NEEDS_QUERY = {
    "/api/patients/{patient_id}/prior-auth": "?payer=typical_rtms&treatment=rtms",
    "/patients/{patient_id}/prior-auth/packet": "?payer=typical_rtms&treatment=rtms",
}


def test_every_page_and_api_read_of_a_patient_leaves_an_event_naming_the_patient(
    app: FastAPI, world: World
) -> None:
    reads = sorted(
        path
        for (method, path), roles in POLICY.items()
        if method == "GET" and "{patient_id}" in path and roles & READ
    )
    assert "/patients/{patient_id}" in reads and "/patients/{patient_id}/chart.svg" in reads
    missing = []
    for path in reads:
        after, started = last_event_id(app), datetime.now(UTC)
        response = world.request("GET", path + NEEDS_QUERY.get(path, ""), "clinician")
        assert response.status_code < 400, (path, response.status_code)
        events = [
            e
            for e in events_since(app, after)
            if (e.who, e.entity_id, e.ip) == ("clinician", "EX10", IP)
            and started - timedelta(seconds=1) <= utc(e.at)
        ]
        if not events:
            missing.append(path)
    assert not missing, f"reads of EX10 without an audit event: {missing}"


def test_the_patient_list_is_audited_as_a_list_without_the_search_term(
    app: FastAPI, world: World
) -> None:
    for path in ("/patients", "/api/patients"):
        after, started = last_event_id(app), datetime.now(UTC)
        assert world.request("GET", path + "?q=x1", "read_only").status_code == 200
        (event,) = audited(app, after, started, "reader", "list", None)
        assert event.entity == "patient"


def test_every_write_by_page_form_or_api_is_audited_with_its_action(
    app: FastAPI, world: World
) -> None:
    # a page action: acknowledging an alert
    after, started = last_event_id(app), datetime.now(UTC)
    response = world.request(
        "POST",
        "/patients/{patient_id}/alerts/acknowledge",
        "clinician",
        data={"alert_key": unquote(world.samples["alert_key"])},
    )
    assert response.status_code == 303
    assert audited(app, after, started, "clinician", "acknowledge_alert", "EX10")
    # a record form
    client = world.client
    client.cookies.clear()
    csrf = session_for(app, client, "clinician")
    version = re.search(
        r'name="version" value="(\d+)"', client.get("/patients/EX10/measurements/new").text
    )
    assert version is not None
    after, started = last_event_id(app), datetime.now(UTC)
    entered = {"instrument": "phq9", "date": "2024-05-30", "version": version.group(1)}
    entered |= {f"items[{k}]": str(v) for k, v in enumerate((1, 1, 2, 1, 0, 1, 1, 0, 0))}
    response = client.post("/patients/EX10/measurements/new", data={**entered, "csrf_token": csrf})
    assert response.status_code == 303, response.text
    assert audited(app, after, started, "clinician", "update", "EX10")
    # the API, with a bearer token
    client.cookies.clear()
    after, started = last_event_id(app), datetime.now(UTC)
    lab = {"test": "TSH", "value": 2.5, "unit": "mIU/L", "date": "2024-05-20"}
    response = client.post(
        "/api/patients/EX10/labs",
        content=json.dumps(lab),
        headers={
            "Authorization": f"Bearer {world.api_tokens['clinician']}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 201, response.text
    assert audited(app, after, started, "clinician", "update", "EX10")


def test_a_self_report_submission_is_audited_under_the_links_name(
    app: FastAPI, world: World
) -> None:
    from trdnav.web import selfreport_links

    token = world.samples["token"]
    form = world.request("GET", "/r/{token}", None)
    nonce = re.search(r'name="form_nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    after, started = last_event_id(app), datetime.now(UTC)
    answers = {f"item_{n}": "1" for n in range(1, 10)} | {"item_9": "0"}
    response = world.client.post(f"/r/{token}", data={**answers, "form_nonce": nonce.group(1)})
    assert response.status_code < 400, response.text
    who = selfreport_links.who(world.samples["link_id"])
    assert audited(app, after, started, who, "update", "EX10")


def test_sign_ins_are_audited_with_their_address_but_never_an_unknown_name_typed(
    app: FastAPI, client: TestClient
) -> None:
    from .test_security import database_rows, sign_in

    after, started = last_event_id(app), datetime.now(UTC)
    signed_in(client, "admin")
    uid = str(next(e.entity_id for e in events_since(app, after) if e.action == "signin"))
    assert audited(app, after, started, "admin", "signin", uid)
    client.cookies.clear()
    assert sign_in(client, "admin", "not the password").status_code == 401
    assert audited(app, after, started, "admin", "signin_failed", uid)
    # a password typed into the name field by mistake is stored nowhere, not even for throttling
    typed = "Tr0ub4dor&3-typed-in-the-wrong-field"
    assert sign_in(client, typed, "").status_code == 401
    assert audited(app, after, started, "(unknown user)", "signin_failed", None)
    assert typed.lower() not in repr(database_rows(app.state.engine)).lower()


# --- append-only ------------------------------------------------------------------------------


def test_events_made_through_the_web_cannot_be_changed_or_deleted(
    app: FastAPI, client: TestClient
) -> None:
    signed_in(client, "clinician")
    signin = select(m.AuditEvent).where(m.AuditEvent.action == "signin")
    with make_sessionmaker(app.state.engine)() as db:  # the ORM refuses, on both databases
        db.scalars(signin).one().who = "mallory"
        with pytest.raises(m.AppendOnlyError):
            db.flush()
        db.rollback()
        db.delete(db.scalars(signin).one())
        with pytest.raises(m.AppendOnlyError):
            db.flush()
        db.rollback()
    engine = app.state.engine
    if engine.dialect.name == "postgresql":  # and so does PostgreSQL, to any SQL client
        for statement in (
            update(m.AuditEvent).values(who="mallory"),
            delete(m.AuditEvent),
            text("TRUNCATE audit_events"),
        ):
            with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
                conn.execute(statement)
    with make_sessionmaker(engine)() as db:
        assert [e.who for e in db.scalars(signin)] == ["clinician"]


# --- the audit page ---------------------------------------------------------------------------


def add_events(
    app: FastAPI, rows: list[tuple[str, str, str | None, datetime]], entity: str = "patient"
) -> None:
    with make_sessionmaker(app.state.engine)() as db:
        for who, action, entity_id, at in rows:
            db.add(
                m.AuditEvent(
                    who=who,
                    at=at,
                    action=action,
                    entity=entity,
                    entity_id=entity_id,
                    ip="10.1.2.3",
                )
            )
        db.commit()


def table_rows(page_text: str) -> list[str]:
    body = page_text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [r for r in body.split("<tr") if "<td" in r]


def test_the_audit_page_shows_who_when_what_which_and_from_where_newest_first(
    app: FastAPI, client: TestClient
) -> None:
    at = datetime(2024, 5, 31, 23, 59, 30, tzinfo=UTC)
    add_events(app, [("dr.a", "read", "EX10", at), ("dr.b", "update", "EX11", at)])
    session_for(app, client, "admin")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    rows = table_rows(page.text)
    assert "read_audit" in rows[0]  # the newest: this very reading of the log
    b = next(r for r in rows if "dr.b" in r)
    for shown in ("2024-05-31 23:59:30", "update", "EX11", "10.1.2.3", 'href="/patients/EX11"'):
        assert shown in b
    assert page.text.index("dr.b") < page.text.index("dr.a")
    assert "UTC" in page.text
    # reading the log is itself audited, with the patient looked into
    after, started = last_event_id(app), datetime.now(UTC)
    assert client.get("/admin/audit", params={"patient": "EX10"}).status_code == 200
    (event,) = audited(app, after, started, "admin", "read_audit", "EX10")
    assert event.entity == "audit"


def test_markup_in_a_user_name_shows_as_text_in_the_audit_log_and_the_user_list(
    app: FastAPI, client: TestClient
) -> None:
    from .test_security import sign_in

    csrf = session_for(app, client, "admin")
    name = "<script>alert(1)</script>"
    form = {"username": name, "role": "read_only", "password": "x" * 12, "csrf_token": csrf}
    assert client.post("/admin/users", data=form).status_code == 303
    with TestClient(app, follow_redirects=False) as other:
        assert sign_in(other, name, "x" * 12).status_code == 303
    for path in ("/admin/audit", "/admin/users"):
        page = client.get(path)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path
        assert "<script>alert(1)" not in page.text, path


def test_the_audit_log_filters_by_user_patient_action_and_utc_dates(
    app: FastAPI, client: TestClient
) -> None:
    def at(day: int, hour: int = 12) -> datetime:
        return datetime(2024, 5, day, hour, tzinfo=UTC)

    add_events(
        app,
        [
            ("dr.a", "read", "EX10", at(1)),
            ("dr.a", "update", "EX10", at(2, 0)),
            ("dr.b", "read", "EX10", at(2, 23)),
            ("dr.b", "read", "EX11", at(3)),
        ],
    )
    add_events(app, [("dr.c", "open", "EX11", at(4))], entity="selfreport_link")
    add_events(app, [("dr.d", "user_create", "11", at(4))], entity="user")
    session_for(app, client, "admin")

    def shown(**params: str) -> list[tuple[str, str]]:
        page = client.get("/admin/audit", params=params)
        assert page.status_code == 200
        out = []
        for row in table_rows(page.text):
            who = re.search(r"<td>(dr\.\w)</td>", row)
            day = re.search(r">(2024-05-\d\d) ", row)
            if who and day:
                out.append((who.group(1), day.group(1)))
        return out

    assert shown(user="dr.a") == [("dr.a", "2024-05-02"), ("dr.a", "2024-05-01")]
    # the patient's events of every kind (here a self-report link opened), never a user's id
    assert shown(patient="EX11") == [("dr.c", "2024-05-04"), ("dr.b", "2024-05-03")]
    assert shown(patient="11") == []
    assert shown(action="update") == [("dr.a", "2024-05-02")]
    # a day runs from 00:00 to 24:00 UTC; "to" is inclusive
    assert shown(date_from="2024-05-02", date_to="2024-05-02") == [
        ("dr.b", "2024-05-02"),
        ("dr.a", "2024-05-02"),
    ]
    assert shown(date_from="2024-05-03", date_to="2024-05-03") == [("dr.b", "2024-05-03")]
    assert shown(user="dr.b", patient="EX10", action="read") == [("dr.b", "2024-05-02")]
    # a bad date is shown next to its field
    page = client.get("/admin/audit", params={"date_from": "31/05/2024"})
    assert page.status_code == 422
    assert 'id="date_from-error">expected a date as YYYY-MM-DD' in page.text
    page = client.get("/admin/audit", params={"date_from": "2024-05-02", "date_to": "2024-05-01"})
    assert page.status_code == 422 and 'id="date_to-error"' in page.text


def test_the_audit_log_shows_50_events_a_page(app: FastAPI, client: TestClient) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    add_events(app, [("dr.p", "read", f"P{i:03}", start + timedelta(minutes=i)) for i in range(60)])
    session_for(app, client, "admin")
    first = client.get("/admin/audit", params={"user": "dr.p"})
    assert len(table_rows(first.text)) == 50
    assert "P059" in first.text and "P010" in first.text and "P009" not in first.text
    assert "Page 1 of 2" in first.text and "user=dr.p&amp;page=2" in first.text
    second = client.get("/admin/audit", params={"user": "dr.p", "page": "2"})
    assert len(table_rows(second.text)) == 10 and "P000" in second.text


def test_only_admins_see_the_audit_log(app: FastAPI, client: TestClient) -> None:
    for name in ("clinician", "reader"):
        client.cookies.clear()
        session_for(app, client, name)
        page = client.get("/admin/audit")
        assert page.status_code == 403 and "<table" not in page.text
    client.cookies.clear()
    assert client.get("/admin/audit").headers["location"] == "/signin?next=/admin/audit"


# --- no patient data in the application log ---------------------------------------------------

LOGGERS = ("", "trdnav", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "starlette",
           "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm", "psycopg",
           "multipart", "python_multipart", "jinja2", "asyncio")  # fmt: skip
# the test's own HTTP client logs the URLs it requests; it is not part of the application
TEST_CLIENT_LOGGERS = ("httpx", "httpx2", "httpcore")


def test_no_patient_data_reaches_the_application_log_even_at_debug(
    app: FastAPI, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    secret_values = {
        "patient id": "EX10",
        "search term": "zq7w",
        "lab value": "4.217",
        "answers": "3, 1, 2, 2, 0",
        "answers (form)": "items%5B0%5D=3",
        "self-report answer field": "item_1=3",
        "alert key": "cssrs_screener",
    }
    client = world.client
    from .test_security import sign_in

    assert sign_in(client, "clinician").status_code == 303
    csrf = re.search(r'data-csrf="([^"]+)"', client.get("/patients", params={"q": "zq7w"}).text)
    assert csrf is not None
    assert client.get("/patients/EX10").status_code == 200
    assert client.get("/patients/EX10/chart.svg").status_code == 200
    lab = {"test": "TSH", "value": 4.217, "unit": "mIU/L", "date": "2024-05-20"}
    headers = {"X-CSRF-Token": csrf.group(1), "Content-Type": "application/json"}
    added = client.post("/api/patients/EX10/labs", content=json.dumps(lab), headers=headers)
    assert added.status_code == 201, added.text
    page = client.get("/patients/EX10/measurements/new")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version is not None
    entered = {"instrument": "phq9", "date": "2024-05-30", "version": version.group(1)}
    entered |= {f"items[{k}]": str(v) for k, v in enumerate((3, 1, 2, 2, 0, 1, 1, 0, 0))}
    stored = client.post(
        "/patients/EX10/measurements/new", data={**entered, "csrf_token": csrf.group(1)}
    )
    assert stored.status_code == 303, stored.text
    bad = client.post(  # a refused write: its values must not be logged either
        "/api/patients/EX10/labs",
        content=json.dumps({**lab, "unit": "zq7w"}),
        headers=headers,
    )
    assert bad.status_code == 422
    client.cookies.clear()
    form = client.get(f"/r/{world.samples['token']}")
    nonce = re.search(r'name="form_nonce" value="([^"]+)"', form.text)
    assert nonce is not None
    answers = {f"item_{n}": str(v) for n, v in enumerate((3, 1, 2, 2, 0, 1, 1, 0, 0), start=1)}
    submitted = client.post(
        f"/r/{world.samples['token']}", data={**answers, "form_nonce": nonce.group(1)}
    )
    assert submitted.status_code < 400

    records = [r for r in caplog.records if not r.name.startswith(TEST_CLIENT_LOGGERS)]
    assert any(r.name == "trdnav.web" for r in records)  # the app did log its requests
    assert any(r.name.startswith("sqlalchemy.engine") for r in records)  # SQL logging was on
    leaks = [
        f"{what} in {r.name} {r.levelname}: {r.getMessage()[:200]}"
        for r in records
        for what, value in secret_values.items()
        if value in r.getMessage() or value in str(r.args) or value in (r.exc_text or "")
    ]
    assert not leaks, "\n".join(leaks[:20])


def test_serve_runs_uvicorn_without_its_access_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """uvicorn's access log prints every path (patient ids) and query (search terms)."""
    import uvicorn
    from typer.testing import CliRunner

    from trdnav.cli import app as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kw: seen.update(kw))
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    result = CliRunner().invoke(cli, ["serve", "--dev", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert seen["access_log"] is False


def test_a_database_error_is_logged_by_its_class_only(
    app: FastAPI, world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from trdnav.storage import records

    def fail(*_args: Any, **_kw: Any) -> Any:
        raise OperationalError("SELECT * FROM patients WHERE external_id = 'EX10'", {}, Exception())

    monkeypatch.setattr(records, "load", fail)
    caplog.set_level(logging.DEBUG)
    response = world.request("GET", "/patients/{patient_id}", "clinician")
    assert response.status_code == 503
    messages = [r.getMessage() for r in caplog.records if r.name == "trdnav.web"]
    assert "database error OperationalError on /patients/{patient_id}" in messages
    app_records = [r for r in caplog.records if not r.name.startswith(TEST_CLIENT_LOGGERS)]
    leaks = [r for r in app_records if "EX10" in r.getMessage() or r.exc_info]
    assert not leaks, [(r.name, r.getMessage()[:300]) for r in leaks]
