"""Database fixtures for every suite: one test over both engines.

SQLite in tmp_path and a throwaway PostgreSQL database at
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` (``.ci/ensure-postgres`` starts it).
A missing server fails the tests unless ``TRDNAV_SKIP_POSTGRES=1`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import upgrade

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def _admin() -> Engine:
    return create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    return PG_SERVER.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database for this test session; each test copies it (CREATE DATABASE TEMPLATE)."""
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
    name = f"trdnav_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(_pg_url(name))
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, fully migrated database on each backend."""
    yield from fresh_database(request, tmp_path)


def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database on the engine of ``request.param`` (sqlite or postgresql):
    SQLite in ``tmp_path``, PostgreSQL copied from the migrated template and dropped after."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'trdnav.db'}"
        upgrade(url)
        yield url
        return
    template: str = request.getfixturevalue("pg_template")
    name = f"{template}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(engine)() as s:
        yield s
