from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from trdnav.history_files import load_history as load_file
from trdnav.knowledge.load import Knowledge
from trdnav.storage.backup import backup, restore
from trdnav.storage.engine import make_sessionmaker
from trdnav.storage.repository import list_patients, load_history, save_history

from .conftest import EXAMPLES


def test_a_backup_restores_identical_data(
    engine: Engine, db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    if engine.dialect.name == "postgresql" and not shutil.which("pg_dump"):
        pytest.skip("pg_dump is not installed")
    histories = [load_file(p, kb, date(2024, 6, 1)) for p in EXAMPLES[:5]]
    maker = make_sessionmaker(engine)
    with maker() as session:
        for h in histories:
            save_history(session, h, "alice")
    out = tmp_path / "backup.dump"
    backup(db_url, out)
    with maker() as session:  # change the database after the backup
        save_history(session, load_file(EXAMPLES[6], kb, date(2024, 6, 1)), "alice")
        save_history(session, histories[0].model_copy(update={"conditions": ()}), "alice")
    engine.dispose()
    restore(db_url, out)
    with maker() as session:
        assert list_patients(session) == sorted(h.patient.id for h in histories)
        for h in histories:
            assert load_history(session, h.patient.id).model_dump() == h.model_dump()
