"""Reliability through the web: optimistic locking, failed requests that change nothing, plain
pages on database errors, and backups that bring back what the web stored.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from trdnav.cli import app as cli
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker

from .conftest import store_examples
from .test_roles import build_world, make_app, session_for
from .test_security import database_rows


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    application = make_app(db_url, kb)
    yield application
    application.state.engine.dispose()


def clinician(app: FastAPI, name: str = "clinician") -> tuple[TestClient, str]:
    client = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    return client, session_for(app, client, name)


def stored_record(app: FastAPI, patient_id: str = "EX10") -> tuple[Any, int]:
    with make_sessionmaker(app.state.engine)() as db:
        record = records.load(db, patient_id, app.state.knowledge, app.state.settings.today, "t")
    return record.history, record.version


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert found is not None, name
    return found.group(1)


def phq9(*values: int) -> dict[str, str]:
    return {"instrument": "phq9"} | {f"items[{k}]": str(v) for k, v in enumerate(values)}


def without_audit(rows: dict[str, Any]) -> dict[str, Any]:
    """Every table but the audit log (a refused write is still a read, and is audited)."""
    return {k: v for k, v in rows.items() if k != "audit_events"}


PLAIN_ERROR = ("Traceback", "SELECT", "sqlalchemy", "psycopg", "sqlite3", 'File "')


# --- optimistic locking -----------------------------------------------------------------------


def test_two_clinicians_save_the_same_record_and_the_second_gets_409_with_nothing_stored(
    app: FastAPI, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10")
    _, before = stored_record(app)
    form = "/patients/EX10/measurements/new"
    (anna, anna_csrf), (ben, ben_csrf) = clinician(app), clinician(app, "admin")
    anna_version = hidden(anna.get(form).text, "version")
    ben_version = hidden(ben.get(form).text, "version")
    assert anna_version == ben_version == str(before)
    first = anna.post(
        form,
        data=phq9(1, 1, 1, 1, 1, 1, 1, 1, 0)
        | {"date": "2024-05-30", "version": anna_version, "csrf_token": anna_csrf},
    )
    assert first.status_code == 303
    second = ben.post(
        form,
        data=phq9(3, 3, 3, 3, 3, 3, 3, 3, 0)
        | {"date": "2024-05-31", "version": ben_version, "csrf_token": ben_csrf},
    )
    assert second.status_code == 409
    assert "Someone else saved this record" in second.text and "Traceback" not in second.text
    history, version = stored_record(app)
    assert version == before + 1
    dates = [x.date.isoformat() for x in history.measurements]
    assert "2024-05-30" in dates and "2024-05-31" not in dates


def test_two_api_clients_replace_the_same_record_and_the_second_gets_412(
    app: FastAPI, db_url: str, kb: Knowledge
) -> None:
    world = build_world(app, db_url, kb)
    token = {"Authorization": f"Bearer {world.api_tokens['clinician']}"}
    c = world.client
    read = c.get("/api/patients/EX10", headers=token)
    etag = read.headers["etag"]
    body = read.json()
    lab = {"test": "TSH", "value": 2.5, "unit": "mIU/L", "date": "2024-05-20"}
    write = {**token, "If-Match": etag, "Content-Type": "application/json"}
    first = c.post("/api/patients/EX10/labs", content=json.dumps(lab), headers=write)
    assert first.status_code == 201
    after_first = database_rows(app.state.engine)
    history = body.get("history", body)
    second = c.put("/api/patients/EX10", content=json.dumps(history), headers=write)
    assert second.status_code == 412, second.text
    assert second.json()["error"]["code"]
    assert without_audit(database_rows(app.state.engine)) == without_audit(after_first)


# --- a failed request changes nothing ---------------------------------------------------------


def test_invalid_input_changes_neither_the_version_nor_any_row(
    app: FastAPI, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10")
    client, csrf = clinician(app)
    form = "/patients/EX10/measurements/new"
    version = hidden(client.get(form).text, "version")
    before = database_rows(app.state.engine)
    page = client.post(
        form,
        data=phq9(1, 1, 1, 1, 9, 1, 1, 1, 0)  # 9 is out of range
        | {"date": "2024-05-30", "version": version, "csrf_token": csrf},
    )
    assert page.status_code == 422
    after = database_rows(app.state.engine)
    assert without_audit(after) == without_audit(before)
    new_events = after["audit_events"][len(before["audit_events"]) :]
    assert all(e[3] != "update" for e in new_events)  # (id, who, at, action, ...)
    assert stored_record(app)[1] == int(version)


def test_a_failure_in_the_middle_of_a_save_stores_nothing_and_is_a_plain_page(
    app: FastAPI, db_url: str, kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_examples(db_url, kb, "10")
    client, csrf = clinician(app)
    form = "/patients/EX10/measurements/new"
    version = hidden(client.get(form).text, "version")
    before = database_rows(app.state.engine)

    def broken_summary(*_args: Any) -> None:
        raise RuntimeError("the summary could not be computed")

    # the record's rows are written, then the summary fails inside the same transaction
    monkeypatch.setattr(records, "write_summary", broken_summary)
    page = client.post(
        form,
        data=phq9(1, 1, 1, 1, 1, 1, 1, 1, 0)
        | {"date": "2024-05-30", "version": version, "csrf_token": csrf},
    )
    assert page.status_code == 500
    assert "nothing was changed" in page.text
    assert not any(s in page.text for s in PLAIN_ERROR) and "RuntimeError" not in page.text
    assert without_audit(database_rows(app.state.engine)) == without_audit(before)


# --- database errors --------------------------------------------------------------------------


def test_a_missing_table_is_a_plain_503_page_without_trace_or_sql(app: FastAPI) -> None:
    client, _ = clinician(app)
    assert client.get("/patients").status_code == 200
    with app.state.engine.begin() as conn:
        conn.execute(text("DROP TABLE patient_summaries"))
    page = client.get("/patients", params={"q": "EX"})
    assert page.status_code == 503
    assert "The database could not complete this request" in page.text
    assert "patient_summaries" not in page.text
    assert not any(s in page.text for s in PLAIN_ERROR)
    api = client.get("/api/patients")
    assert api.status_code == 503
    assert api.json()["error"]["code"] == "database_unavailable"
    assert "patient_summaries" not in api.text


def test_a_database_that_is_down_or_failing_is_a_plain_503_page(app: FastAPI) -> None:
    client, csrf = clinician(app, "admin")

    class Failing:
        def __call__(self) -> Any:
            raise OperationalError("SELECT secret FROM patients", {"id": "EX10"}, Exception("down"))

    working = app.state.sessionmaker
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/nothing?connect_timeout=2")
    try:
        app.state.sessionmaker = make_sessionmaker(down)  # nothing listens there
        page = client.get("/patients")
        assert page.status_code == 503
        assert "nothing was changed" in page.text
        assert not any(s in page.text for s in PLAIN_ERROR) and "127.0.0.1" not in page.text
        app.state.sessionmaker = Failing()
        page = client.post("/admin/users", data={"csrf_token": csrf})
        assert page.status_code == 503
        assert "EX10" not in page.text and not any(s in page.text for s in PLAIN_ERROR)
    finally:
        app.state.sessionmaker = working
        down.dispose()
    assert client.get("/patients").status_code == 200  # and back when the database is


# --- backups ----------------------------------------------------------------------------------


def test_a_backup_brings_back_the_web_created_record_users_acknowledgements_and_summaries(
    app: FastAPI, db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    if db_url.startswith("postgresql") and not (shutil.which("pg_dump") and shutil.which("psql")):
        pytest.skip("pg_dump and psql are not installed")
    world = build_world(app, db_url, kb)
    token = {"Authorization": f"Bearer {world.api_tokens['clinician']}"}
    c = world.client
    lab = {"test": "TSH", "value": 2.5, "unit": "mIU/L", "date": "2024-05-20"}
    headers = {**token, "Content-Type": "application/json"}
    assert (
        c.post("/api/patients/EX10/labs", content=json.dumps(lab), headers=headers).status_code
        == 201
    )
    key = world.samples["alert_key"]
    assert c.post(f"/api/patients/EX10/alerts/{key}/acknowledge", headers=token).status_code < 300
    admin_csrf = session_for(app, c, "admin")
    user = {
        "username": "nurse",
        "role": "clinician",
        "password": "x" * 12,
        "csrf_token": admin_csrf,
    }
    assert c.post("/admin/users", data=user).status_code == 303
    c.cookies.clear()
    saved_history = stored_record(app)  # (reading it is audited: before the snapshot)
    saved = database_rows(app.state.engine)
    assert saved["alert_acknowledgements"] and saved["patient_summaries"]

    runner = CliRunner()
    out = tmp_path / "backup.dump"
    done = runner.invoke(cli, ["backup", str(out), "--database-url", db_url])
    assert done.exit_code == 0, done.output
    # changes after the backup: gone after the restore
    lab2 = {**lab, "date": "2024-05-27"}
    assert (
        c.post("/api/patients/EX10/labs", content=json.dumps(lab2), headers=headers).status_code
        == 201
    )
    app.state.engine.dispose()
    done = runner.invoke(cli, ["restore", str(out), "--database-url", db_url])
    assert done.exit_code == 0, done.output

    assert database_rows(app.state.engine) == saved
    assert stored_record(app) == saved_history
    with make_sessionmaker(app.state.engine)() as db:
        assert db.scalar(select(m.User.active).where(m.User.username == "nurse")) is True
    if app.state.engine.dialect.name == "postgresql":  # the append-only trigger came back too
        with app.state.engine.connect() as conn, pytest.raises(Exception, match="append-only"):
            conn.execute(text("DELETE FROM audit_events"))
