"""The database unreachable, restarted or failing mid-request, under the real server.

Every case runs ``trdnav serve`` over a database the test then breaks from outside:

- PostgreSQL refusing connections (``ALTER DATABASE ... ALLOW_CONNECTIONS false`` and its sessions
  ended): pages answer a 503 page, the API its JSON error, until connections are allowed again;
- PostgreSQL "restarted" under the app: every backend of its database ended with
  ``pg_terminate_backend`` (the shared server itself is not restarted): the next request succeeds;
- a write failing in the middle (a trigger that raises when the write's audit row is inserted,
  after the record's new version and measurements were written in the same transaction; and on
  PostgreSQL a connection ended while the write is inside the database): 503, nothing of it stored;
- SQLite locked by another process's exclusive transaction: the write waits for the busy timeout
  (``TRDNAV_SQLITE_BUSY_TIMEOUT``, 2 s here, 15 s by default), then answers 503 (not 500), and
  works once the lock is gone;
- ``trdnav serve`` started while the database is down refuses to start with a clear message.
"""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass

import httpx2
from sqlalchemy import func, select, text

from tests.faults.conftest import SQLITE_BUSY_SECONDS, Breakable
from tests.faults.servers import (
    PATIENT,
    Clinic,
    Server,
    allow_connections,
    pg_admin,
    server_env,
    terminate_backends,
    trdnav_command,
)
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine

UNAVAILABLE = "The database could not complete this request, so nothing was changed."


@dataclass(frozen=True)
class RecordState:
    version: int
    measurements: int
    updates_audited: int


def record_state(url: str) -> RecordState:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row_id, version = conn.execute(
                select(m.Patient.id, m.Patient.version).where(m.Patient.external_id == PATIENT)
            ).one()
            count = conn.scalar(
                select(func.count())
                .select_from(m.Measurement)
                .where(m.Measurement.patient_id == row_id)
            )
            updates = conn.scalar(
                select(func.count())
                .select_from(m.AuditEvent)
                .where(m.AuditEvent.action == "update", m.AuditEvent.entity_id == PATIENT)
            )
    finally:
        engine.dispose()
    return RecordState(version, int(count or 0), int(updates or 0))


def assert_unavailable_page(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert UNAVAILABLE in response.text
    assert "Traceback" not in response.text


def assert_unavailable_json(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"


# --- PostgreSQL unreachable, then back -----------------------------------------------------------


def test_postgresql_refusing_connections_gives_503_pages_and_json_until_it_is_back(
    pg_served: tuple[Breakable, Server, Clinic],
) -> None:
    pg_breakable, server, clinic = pg_served
    before = record_state(pg_breakable.url)
    form = clinic.measurement_form()
    allow_connections(pg_breakable.name, False)
    assert terminate_backends(pg_breakable.name) >= 1  # the app's pooled connections

    assert_unavailable_page(clinic.client.get("/patients"))
    assert_unavailable_page(clinic.client.get(f"/patients/{PATIENT}"))
    assert_unavailable_page(clinic.add_measurement(form))
    assert_unavailable_json(clinic.client.get("/api/patients"))
    assert_unavailable_json(clinic.api_add_lab())

    allow_connections(pg_breakable.name, True)
    assert clinic.client.get(f"/patients/{PATIENT}").status_code == 200
    assert record_state(pg_breakable.url) == before  # the refused writes left nothing
    stored = clinic.add_measurement(form)
    assert stored.status_code == 303, stored.text
    assert record_state(pg_breakable.url).version == before.version + 1
    log = server.log_text()
    assert "database error OperationalError" in log
    assert "Traceback" not in log


def test_the_first_request_after_postgresql_ends_the_apps_connections_succeeds(
    pg_served: tuple[Breakable, Server, Clinic],
) -> None:
    # a restart of the server ends every session as this does (the shared server is not restarted)
    pg_breakable, _, clinic = pg_served
    for _ in range(3):  # several pooled connections
        assert clinic.client.get(f"/patients/{PATIENT}").status_code == 200
    assert terminate_backends(pg_breakable.name) >= 1

    assert clinic.client.get(f"/patients/{PATIENT}").status_code == 200
    assert terminate_backends(pg_breakable.name) >= 1
    assert clinic.api_add_lab().status_code == 201
    assert terminate_backends(pg_breakable.name) >= 1
    assert clinic.add_measurement().status_code == 303


# --- a write failing in the middle ------------------------------------------------------------


def _fail_on_update_audit(database: Breakable) -> None:
    """A trigger that fails the write when its audit row goes in: by then the transaction has
    written the record's new version, measurements and summary."""
    if database.kind == "sqlite":
        assert database.path is not None
        with sqlite3.connect(database.path) as conn:
            conn.execute(
                "CREATE TRIGGER fail_update_audit BEFORE INSERT ON audit_events "
                "WHEN NEW.action = 'update' BEGIN SELECT RAISE(ABORT, 'disk I/O failed'); END"
            )
        return
    engine = make_engine(database.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE FUNCTION fail_update_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'could not write block: No space left on device'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_update_audit BEFORE INSERT ON audit_events FOR EACH ROW "
                    "WHEN (NEW.action = 'update') EXECUTE FUNCTION fail_update_audit()"
                )
            )
    finally:
        engine.dispose()


def test_a_write_failing_in_the_middle_answers_503_and_stores_none_of_it(
    served: tuple[Breakable, Server, Clinic],
) -> None:
    breakable, _, clinic = served
    before = record_state(breakable.url)
    form = clinic.measurement_form()
    _fail_on_update_audit(breakable)

    assert_unavailable_page(clinic.add_measurement(form))
    assert_unavailable_json(clinic.api_add_lab())
    assert record_state(breakable.url) == before
    assert clinic.client.get(f"/patients/{PATIENT}").status_code == 200  # reads still work


def test_a_connection_lost_inside_a_write_answers_503_and_stores_none_of_it(
    pg_served: tuple[Breakable, Server, Clinic],
) -> None:
    pg_breakable, _, clinic = pg_served
    before = record_state(pg_breakable.url)
    form = clinic.measurement_form()
    engine = make_engine(pg_breakable.url)
    with engine.begin() as conn:  # the write's audit row waits inside the database ...
        conn.execute(
            text(
                "CREATE FUNCTION slow_update_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN PERFORM pg_sleep(20); RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER slow_update_audit BEFORE INSERT ON audit_events FOR EACH ROW "
                "WHEN (NEW.action = 'update') EXECUTE FUNCTION slow_update_audit()"
            )
        )
    engine.dispose()
    answers: list[httpx2.Response] = []
    writer = threading.Thread(target=lambda: answers.append(clinic.add_measurement(form)))
    writer.start()
    try:
        with pg_admin() as admin:  # ... where its connection is ended
            deadline = time.monotonic() + 15
            ended = 0
            while not ended and time.monotonic() < deadline:
                ended = admin.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND wait_event = 'PgSleep'"
                    ),
                    {"name": pg_breakable.name},
                ).scalar_one()
                time.sleep(0.05)
        assert ended == 1
    finally:
        writer.join(timeout=30)
    assert_unavailable_page(answers[0])
    assert record_state(pg_breakable.url) == before


# --- SQLite locked by another process ----------------------------------------------------------


def test_a_locked_sqlite_database_answers_503_after_the_busy_timeout_then_recovers(
    sqlite_served: tuple[Breakable, Server, Clinic],
) -> None:
    sqlite_breakable, _, clinic = sqlite_served
    before = record_state(sqlite_breakable.url)
    form = clinic.measurement_form()
    assert sqlite_breakable.path is not None
    lock = sqlite3.connect(sqlite_breakable.path, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        assert_unavailable_page(clinic.add_measurement(form))
        waited = time.monotonic() - started
        assert_unavailable_json(clinic.api_add_lab())
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert waited >= SQLITE_BUSY_SECONDS * 0.9  # it waited for the lock (the busy timeout) first
    assert record_state(sqlite_breakable.url) == before
    assert clinic.add_measurement(form).status_code == 303
    assert record_state(sqlite_breakable.url).version == before.version + 1


# --- started while the database is down ----------------------------------------------------------


def test_the_server_started_while_postgresql_refuses_connections_says_so_and_exits(
    pg_breakable: Breakable,
) -> None:
    allow_connections(pg_breakable.name, False)
    command = [*trdnav_command(), "serve", "--database-url", pg_breakable.url, "--port", "1"]
    result = subprocess.run(
        command, env=server_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error --database-url: cannot open the database" in result.stderr
    assert pg_breakable.name in result.stderr
    assert "not currently accepting connections" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
