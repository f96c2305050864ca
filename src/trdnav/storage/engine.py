"""Engines: SQLite gets WAL journaling and enforced foreign keys on every connection.

SQLite commits are durable on power loss (``synchronous=FULL``) unless
``TRDNAV_SQLITE_SYNCHRONOUS=NORMAL`` is set: faster under write load (every read of patient data
writes an audit event), but a power failure may lose the last commits (never corrupts the file).

A SQLite writer waits up to ``TRDNAV_SQLITE_BUSY_TIMEOUT`` seconds (default 15) for another's
write lock before the request fails with 503 "database is locked". Every read of patient data
writes an audit row, so under a clinic's peak with PDFs rendering most requests queue for the
lock; pysqlite's 5 s default failed 4 of 4,641 requests in the 10-minute, 30-user soak on a
loaded 2-core machine (docs/reliability.md, Load and soak).

Every engine tests a pooled connection before handing it out (``pool_pre_ping``): after the
database server restarts, or an administrator ends the app's sessions, the next request gets a
fresh connection instead of failing on a dead one (docs/reliability.md, Faults).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from trdnav.storage.settings import database_url, normalise_url

BUSY_TIMEOUT_VAR = "TRDNAV_SQLITE_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 15.0


POOL_SIZE = 5
THREADS = 40  # anyio's default thread limit, which runs FastAPI's sync handlers


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        mode = os.environ.get("TRDNAV_SQLITE_SYNCHRONOUS", "FULL").upper()
        if mode in ("FULL", "NORMAL"):
            cursor.execute(f"PRAGMA synchronous={mode}")
    finally:
        cursor.close()


def _pool_options(url: str) -> dict[str, Any]:
    """A pool as large as the thread pool that uses it: 5 kept, up to 35 more (40 in all).

    The web app's handlers reach the database from FastAPI's thread pool (40 threads), never
    from the event loop, so a request waiting for a connection blocks only its own thread while
    the requests holding connections finish and return them. Sized to the thread pool, the pool
    never makes a thread wait; bounded, it never opens more connections than the server can use
    (PostgreSQL's default limit is 100 per server). Found by
    tests/reliability/test_concurrency.py: when form handlers were ``async`` and a bounded pool
    of 15 made them wait on the loop, 20 editors on one record deadlocked the server for 30 s.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database in (None, "", ":memory:"):
        return {}  # an in-memory database has its own single-connection pool
    return {"pool_size": POOL_SIZE, "max_overflow": THREADS - POOL_SIZE}


def sqlite_busy_timeout() -> float:
    """Seconds a SQLite connection waits for a lock (``TRDNAV_SQLITE_BUSY_TIMEOUT``)."""
    raw = os.environ.get(BUSY_TIMEOUT_VAR, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_BUSY_TIMEOUT
    except ValueError:
        seconds = DEFAULT_BUSY_TIMEOUT
    return seconds if 0 < seconds <= 600 else DEFAULT_BUSY_TIMEOUT


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default :func:`database_url`)."""
    url = normalise_url(url) if url else database_url()
    options = _pool_options(url)
    if make_url(url).get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": sqlite_busy_timeout()}
    engine = create_engine(url, pool_pre_ping=True, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
