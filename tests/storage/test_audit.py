from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from trdnav.history_files import load_history as load_file
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.repository import list_patients, load_history, save_history

from .conftest import EXAMPLES


def _events(session: Session) -> list[tuple[str, str, str | None]]:
    rows = session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id))
    return [(e.who, e.action, e.entity_id) for e in rows]


def test_reads_and_writes_leave_audit_events(session: Session, kb: Knowledge) -> None:
    history = load_file(EXAMPLES[0], kb, date(2024, 6, 1))
    pid = save_history(session, history, "alice")
    save_history(session, history, "bob")
    load_history(session, pid, user="carol")
    list_patients(session, user="dave")
    assert _events(session) == [
        ("alice", "create", pid),
        ("bob", "update", pid),
        ("carol", "read", pid),
        ("dave", "list", None),
    ]


def test_the_orm_refuses_to_change_or_delete_audit_events(session: Session, kb: Knowledge) -> None:
    save_history(session, load_file(EXAMPLES[0], kb, date(2024, 6, 1)), "alice")
    event = session.scalars(select(m.AuditEvent)).one()
    event.who = "mallory"
    with pytest.raises(m.AppendOnlyError):
        session.flush()
    session.rollback()
    session.delete(session.scalars(select(m.AuditEvent)).one())
    with pytest.raises(m.AppendOnlyError):
        session.flush()
    session.rollback()
    assert _events(session)[0][0] == "alice"


def test_postgresql_refuses_changes_to_audit_events_even_in_raw_sql(
    engine: Engine, session: Session, kb: Knowledge
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the database trigger exists on PostgreSQL only (SQLite: ORM guard)")
    save_history(session, load_file(EXAMPLES[0], kb, date(2024, 6, 1)), "alice")
    for statement in (
        update(m.AuditEvent).values(who="mallory"),
        delete(m.AuditEvent),
        text("TRUNCATE audit_events"),
    ):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(statement)
    assert _events(session)[0][0] == "alice"
