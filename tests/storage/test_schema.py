from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from trdnav.storage.engine import make_engine
from trdnav.storage.migrations import upgrade
from trdnav.storage.models import Base

EXPECTED_TABLES = {
    "users",
    "patients",
    "episodes",
    "conditions",
    "treatments",
    "dose_steps",
    "measurements",
    "labs",
    "pgx_results",
    "current_medications",
    "clinician_alerts",
    "alert_acknowledgements",
    "notes",
    "plans",
    "audit_events",
    "patient_summaries",
    "selfreport_links",
    "login_attempts",
    "api_tokens",
    "courses",
    "patient_identities",
    "user_sessions",
    "pending_signins",
    "user_totp",
    "recovery_codes",
}


def test_the_migrations_create_every_table_of_the_models(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) == EXPECTED_TABLES
    assert tables - {"alembic_version"} == EXPECTED_TABLES
    assert "alembic_version" in tables


def test_the_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrading_twice_is_harmless(db_url: str) -> None:
    upgrade(db_url)


def test_sqlite_enforces_foreign_keys_and_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fk.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            with pytest.raises(IntegrityError):
                conn.execute(
                    text(
                        "INSERT INTO episodes (patient_id, onset, diagnosis, severity) "
                        "VALUES (999, :d, 'mdd_single', 'mild')"
                    ),
                    {"d": date(2024, 1, 1)},
                )
    finally:
        engine.dispose()
