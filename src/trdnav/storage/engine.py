"""Engines: SQLite gets WAL journaling and enforced foreign keys on every connection.

SQLite commits are durable on power loss (``synchronous=FULL``) unless
``TRDNAV_SQLITE_SYNCHRONOUS=NORMAL`` is set: faster under write load (every read of patient data
writes an audit event), but a power failure may lose the last commits (never corrupts the file).

Every engine tests a pooled connection before handing it out (``pool_pre_ping``): after the
database server restarts, or an administrator ends the app's sessions, the next request gets a
fresh connection instead of failing on a dead one (docs/reliability.md, Faults).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from trdnav.storage.settings import database_url, normalise_url


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


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default :func:`database_url`)."""
    engine = create_engine(normalise_url(url) if url else database_url(), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
