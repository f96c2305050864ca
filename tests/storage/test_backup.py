from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from trdnav.cli_db import register
from trdnav.history_files import load_history as load_file
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.backup import BackupError, backup, restore
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


# --- a full disk, a crash and a damaged file: all or nothing --------------------------------------

DISK_BYTES = 384 * 1024  # the small filesystem the backup is written to


def _store(engine: Engine, kb: Knowledge, count: int) -> list[str]:
    histories = [load_file(p, kb, date(2024, 6, 1)) for p in EXAMPLES[:count]]
    with make_sessionmaker(engine)() as session:
        for h in histories:
            save_history(session, h, "alice")
    return sorted(h.patient.id for h in histories)


def _grow(engine: Engine, rows: int) -> None:
    """Make the database bigger than the small disk (audit events are cheap rows)."""
    with engine.begin() as conn:
        conn.execute(
            insert(m.AuditEvent),
            [
                {"who": "filler", "at": datetime.now(UTC), "action": "read", "entity": "patient"}
                for _ in range(rows)
            ],
        )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 384 KiB filesystem (tmpfs, mounted as root): writing past it fails with ENOSPC."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["/usr/bin/mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["/usr/bin/umount", "--lazy", str(folder)], check=False)


def _tool_missing(db_url: str) -> bool:
    return db_url.startswith("postgresql") and not shutil.which("pg_dump")


def test_a_backup_that_fills_the_disk_fails_clearly_and_keeps_the_previous_backup(
    engine: Engine, db_url: str, kb: Knowledge, small_disk: Path
) -> None:
    if _tool_missing(db_url):
        pytest.skip("pg_dump is not installed")
    _store(engine, kb, 2)
    out = small_disk / "clinic.backup"
    backup(db_url, out)  # the previous backup: it fits
    previous = out.read_bytes()
    _grow(engine, 20_000)
    engine.dispose()
    with pytest.raises(BackupError) as failed:
        backup(db_url, out)
    message = str(failed.value)
    assert "disk is full" in message or "No space left" in message, message
    assert "previous backup there is unchanged" in message
    assert out.read_bytes() == previous
    assert sorted(p.name for p in small_disk.iterdir()) == ["clinic.backup"]  # no partial file


def test_trdnav_backup_on_a_full_disk_exits_2_without_a_traceback(
    engine: Engine, db_url: str, kb: Knowledge, small_disk: Path
) -> None:
    if _tool_missing(db_url):
        pytest.skip("pg_dump is not installed")
    _store(engine, kb, 1)
    _grow(engine, 20_000)
    engine.dispose()
    out = small_disk / "clinic.backup"
    out.write_text("the previous backup", encoding="utf-8")
    trdnav = Path(sys.executable).with_name("trdnav")
    done = subprocess.run(
        [str(trdnav), "backup", str(out), "--database-url", db_url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "could not write the backup" in done.stderr or "pg_dump failed" in done.stderr
    assert "previous backup there is unchanged" in done.stderr
    assert out.read_text(encoding="utf-8") == "the previous backup"
    assert [p.name for p in small_disk.iterdir()] == ["clinic.backup"]


def test_a_file_size_limit_during_backup_is_reported_and_leaves_no_partial_file(
    engine: Engine, db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    """Without root (no tmpfs), the same failure through RLIMIT_FSIZE (EFBIG) in a subprocess."""
    if _tool_missing(db_url):
        pytest.skip("pg_dump is not installed")
    _store(engine, kb, 1)
    _grow(engine, 20_000)
    engine.dispose()
    out = tmp_path / "clinic.backup"
    out.write_text("the previous backup", encoding="utf-8")
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from trdnav.storage.backup import BackupError, backup\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({DISK_BYTES}, {DISK_BYTES}))\n"
        "try:\n"
        "    backup(sys.argv[1], Path(sys.argv[2]))\n"
        "except BackupError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, db_url, str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "file size limit" in done.stdout, done.stdout
    assert out.read_text(encoding="utf-8") == "the previous backup"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".clinic")] == []


def test_a_truncated_or_foreign_backup_is_refused_and_the_database_is_unchanged(
    engine: Engine, db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    if _tool_missing(db_url):
        pytest.skip("pg_dump is not installed")
    ids = _store(engine, kb, 3)
    good = tmp_path / "good.backup"
    backup(db_url, good)
    _store(engine, kb, 5)  # the database moves on: 5 patients
    engine.dispose()
    data = good.read_bytes()
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a backup at all\n", encoding="utf-8")
    for damaged, words in ((truncated, ("damaged", "truncated")), (foreign, ("not a",))):
        with pytest.raises(BackupError) as refused:
            restore(db_url, damaged)
        assert any(w in str(refused.value) for w in words), str(refused.value)
        with make_sessionmaker(engine)() as session:
            assert len(list_patients(session)) == 5
    restore(db_url, good)  # and the good one still restores
    with make_sessionmaker(engine)() as session:
        assert list_patients(session) == ids


def test_trdnav_restore_of_a_truncated_backup_exits_2_with_a_clear_message(
    engine: Engine, db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    if _tool_missing(db_url):
        pytest.skip("pg_dump is not installed")
    _store(engine, kb, 2)
    good = tmp_path / "good.backup"
    backup(db_url, good)
    engine.dispose()
    truncated = tmp_path / "truncated.backup"
    truncated.write_bytes(good.read_bytes()[:-300])
    result = CliRunner().invoke(_cli(), ["restore", str(truncated), "--database-url", db_url])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.startswith("error ") and str(truncated) in result.output
    assert "truncated" in result.output
    assert "Traceback" not in result.output


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return app
