"""Backups: SQLite through the online backup API; PostgreSQL through ``pg_dump`` / ``psql``.

``backup(url, out)`` writes a consistent copy while the database is in use; ``restore(url, src)``
replaces the database's content with the backup's.

Both are all-or-nothing:

- a backup is written to a temporary file beside ``out``, flushed to disk (fsync) and renamed over
  ``out`` only when complete, so a full disk, a failing tool or a crash leaves the previous backup
  at ``out`` as it was (and no partial file);
- a restore first checks that the file is a complete backup (SQLite: a database that passes
  ``PRAGMA integrity_check`` and has the app's tables; PostgreSQL: a ``pg_dump`` file that ends
  with pg_dump's completion line), then replaces the content in one transaction (SQLite's backup
  API; ``psql --single-transaction``), so a truncated file or a restore killed midway leaves the
  database as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from trdnav.errors import TrdnavError
from trdnav.storage.settings import normalise_url


class BackupError(TrdnavError):
    """A backup or restore could not be done (missing tool, unsupported database, tool failure)."""


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return database


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment (the password goes in PGPASSWORD, not argv)."""
    u = make_url(url)
    args = ["--dbname", u.database or "postgres"]
    if u.host:
        args += ["--host", u.host]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return args, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: it is needed for PostgreSQL backups")
    return found


PG_DUMP_HEAD = "-- PostgreSQL database dump"
PG_DUMP_TAIL = "-- PostgreSQL database dump complete"
_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def _copy_sqlite(source: str, target: str) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(exc: BaseException) -> str:
    """A failure in words (a full disk said plainly)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"the disk is full or the file too large ({exc.strerror})"
    if isinstance(exc, sqlite3.Error) and "full" in str(exc):
        return f"the disk is full ({exc})"
    if isinstance(exc, sqlite3.Error) and "disk I/O" in str(exc):
        return f"{exc} (the disk is full, a file size limit was reached or the disk fails)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _write_atomically(out: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``out``, fsync it, rename it over ``out``; on any failure
    remove the temporary file and raise :class:`BackupError` (``out`` is left as it was)."""
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise BackupError(f"cannot write the backup {out}: no folder {folder}")
    tmp = folder / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, out)
        _fsync(folder)
    except (OSError, sqlite3.Error, BackupError) as exc:
        for leftover in (tmp, *(Path(f"{tmp}{end}") for end in _SQLITE_SIDE_FILES)):
            leftover.unlink(missing_ok=True)
        kept = " (the previous backup there is unchanged)" if out.exists() else ""
        if isinstance(exc, BackupError):
            raise BackupError(f"{exc}; nothing was written to {out}{kept}") from None
        raise BackupError(
            f"could not write the backup {out}: {_why(exc)}; nothing was written{kept}"
        ) from None


def _pg_dump(url: str, target: Path) -> None:
    args, env = _pg_args(url)
    result = subprocess.run(  # noqa: S603
        [_tool("pg_dump"), "--clean", "--if-exists", "--no-owner", "--file", str(target), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {_tool_failure(result)}")


def _tool_failure(result: subprocess.CompletedProcess[str]) -> str:
    if result.stderr.strip():
        return result.stderr.strip()
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        why = " (the file size limit was reached)" if name == "SIGXFSZ" else ""
        return f"it was stopped by {name}{why}"
    return f"exit status {result.returncode}"


def backup(url: str, out: Path) -> None:
    """Write a backup of the database at ``url`` to ``out`` (a SQLite file or a SQL dump)."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        source = _sqlite_path(url)
        if not Path(source).is_file():
            raise BackupError(f"no database file {source}")
        _write_atomically(out, lambda tmp: _copy_sqlite(source, str(tmp)))
    elif backend == "postgresql":
        _write_atomically(out, lambda tmp: _pg_dump(url, tmp))
    else:
        raise BackupError(f"backups of {backend} databases are not supported")


def _check_sqlite_backup(src: Path) -> None:
    """Refuse a file that is not a complete SQLite backup of this app (nothing is changed)."""
    with src.open("rb") as f:
        header = f.read(100)
    if not header.startswith(_SQLITE_HEADER) or len(header) < 100:
        raise BackupError(f"{src} is not a SQLite backup (it does not start as a SQLite database)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size = src.stat().st_size
    # the header's page count is valid when its "version valid for" equals the change counter
    counted = header[24:28] == header[92:96] and pages > 0
    if page_size < 512 or size % page_size or (counted and size < pages * page_size):
        raise BackupError(f"{src} is truncated: {size} bytes, not whole database pages")
    try:
        conn = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{src} is damaged or truncated ({exc})") from None
    if result != ["ok"]:
        raise BackupError(f"{src} is damaged or truncated ({'; '.join(result[:3])})")
    if not {"alembic_version", "patients", "audit_events"} <= tables:
        raise BackupError(f"{src} is a SQLite database but not a TRD Navigator backup")


def _check_pg_backup(src: Path) -> None:
    """Refuse a file that is not a complete pg_dump file (a truncated dump would restore part)."""
    with src.open("rb") as f:
        head = f.read(200).decode("utf-8", errors="replace")
        f.seek(max(0, src.stat().st_size - 400))
        tail = f.read().decode("utf-8", errors="replace")
    if PG_DUMP_HEAD not in head:
        raise BackupError(f"{src} is not a PostgreSQL backup written by `trdnav backup`")
    if PG_DUMP_TAIL not in tail:
        raise BackupError(f"{src} is incomplete (truncated?): it lacks pg_dump's last line")


def restore(url: str, src: Path) -> None:
    """Replace the content of the database at ``url`` with the backup ``src``."""
    url = normalise_url(url)
    if not src.is_file():
        raise BackupError(f"no backup file {src}")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        _check_sqlite_backup(src)
        try:
            _copy_sqlite(str(src), _sqlite_path(url))
        except sqlite3.Error as exc:
            raise BackupError(f"the restore failed ({exc}); the database is unchanged") from None
    elif backend == "postgresql":
        _check_pg_backup(src)
        args, env = _pg_args(url)
        result = subprocess.run(  # noqa: S603
            [
                _tool("psql"),
                "--quiet",
                "--no-psqlrc",
                "--single-transaction",
                "-v",
                "ON_ERROR_STOP=1",
                "--file",
                str(src),
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            raise BackupError(f"psql failed: {_tool_failure(result)}; the database is unchanged")
    else:
        raise BackupError(f"restores of {backend} databases are not supported")
