"""Fixtures of the fault tests: a seeded database of each kind that a test may break, and the
real server (``trdnav serve``) over it.

Starting the server takes seconds, so each module shares one database and one server per engine
(``pg_world``, ``sqlite_world``); the per-test fixtures (``pg_served``, ``sqlite_served``,
``served``) sign a clinician in and, after the test, repair what it broke (connections allowed
again, the test's triggers dropped), so every test starts from a working database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.databases import pg_template  # noqa: F401 - the session's migrated template
from tests.faults.servers import (
    Clinic,
    Server,
    allow_connections,
    drop_pg_database,
    pg_database,
    running_server,
    seed,
)
from trdnav.knowledge.load import Knowledge
from trdnav.storage.engine import BUSY_TIMEOUT_VAR, make_engine
from trdnav.storage.migrations import upgrade

TEST_TRIGGERS = ("fail_update_audit", "slow_update_audit")
SQLITE_BUSY_SECONDS = 2.0


@dataclass
class Breakable:
    """A migrated, seeded database; ``name`` is the PostgreSQL database's name ('' on SQLite)."""

    kind: str
    url: str
    name: str = ""
    path: Path | None = None


def _skip_without_postgres() -> None:
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")


@contextmanager
def _new_pg(template: str, kb: Knowledge) -> Iterator[Breakable]:
    name, url = pg_database(template)
    try:
        seed(url, kb)
        yield Breakable("postgresql", url, name)
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_breakable(pg_template: str, kb: Knowledge) -> Iterator[Breakable]:  # noqa: F811
    """A PostgreSQL database of the test's own (no server)."""
    _skip_without_postgres()
    with _new_pg(pg_template, kb) as database:
        yield database


def repair(database: Breakable) -> None:
    """Undo what a test broke: connections allowed, the tests' triggers dropped."""
    if database.kind == "sqlite":
        assert database.path is not None
        with sqlite3.connect(database.path) as conn:
            for trigger in TEST_TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        return
    allow_connections(database.name, True)
    engine = make_engine(database.url)
    try:
        with engine.begin() as conn:
            for trigger in TEST_TRIGGERS:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger} ON audit_events"))
                conn.execute(text(f"DROP FUNCTION IF EXISTS {trigger}()"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def pg_world(
    pg_template: str,  # noqa: F811
    kb: Knowledge,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Breakable, Server]]:
    _skip_without_postgres()
    with _new_pg(pg_template, kb) as database:
        with running_server(database.url, tmp_path_factory.mktemp("pg-server")) as server:
            yield database, server


@pytest.fixture(scope="module")
def sqlite_world(
    kb: Knowledge, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Breakable, Server]]:
    folder = tmp_path_factory.mktemp("sqlite-server")
    path = folder / "clinic.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    seed(url, kb)
    # a short busy timeout (default 15 s) keeps the locked-database test short
    busy = {BUSY_TIMEOUT_VAR: str(SQLITE_BUSY_SECONDS)}
    with running_server(url, folder, busy) as server:
        yield Breakable("sqlite", url, path=path), server


def _signed_in(world: tuple[Breakable, Server]) -> Iterator[tuple[Breakable, Server, Clinic]]:
    database, server = world
    clinic = Clinic(server)
    try:
        yield database, server, clinic
    finally:
        clinic.close()
        repair(database)


@pytest.fixture
def pg_served(pg_world: tuple[Breakable, Server]) -> Iterator[tuple[Breakable, Server, Clinic]]:
    yield from _signed_in(pg_world)


@pytest.fixture
def sqlite_served(
    sqlite_world: tuple[Breakable, Server],
) -> Iterator[tuple[Breakable, Server, Clinic]]:
    yield from _signed_in(sqlite_world)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest) -> tuple[Breakable, Server, Clinic]:
    fixture = "sqlite_served" if request.param == "sqlite" else "pg_served"
    world: tuple[Breakable, Server, Clinic] = request.getfixturevalue(fixture)
    return world
