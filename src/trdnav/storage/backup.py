"""Backups: SQLite through the online backup API; PostgreSQL through ``pg_dump`` / ``psql``.

``backup(url, out)`` writes a consistent copy while the database is in use; ``restore(url, src)``
replaces the database's content with the backup's.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
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


def _copy_sqlite(source: str, target: str) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def backup(url: str, out: Path) -> None:
    """Write a backup of the database at ``url`` to ``out`` (a SQLite file or a SQL dump)."""
    url = normalise_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        out.unlink(missing_ok=True)
        _copy_sqlite(_sqlite_path(url), str(out))
    elif backend == "postgresql":
        args, env = _pg_args(url)
        result = subprocess.run(  # noqa: S603
            [_tool("pg_dump"), "--clean", "--if-exists", "--no-owner", "--file", str(out), *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    else:
        raise BackupError(f"backups of {backend} databases are not supported")


def restore(url: str, src: Path) -> None:
    """Replace the content of the database at ``url`` with the backup ``src``."""
    url = normalise_url(url)
    if not src.is_file():
        raise BackupError(f"no backup file {src}")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        _copy_sqlite(str(src), _sqlite_path(url))
    elif backend == "postgresql":
        args, env = _pg_args(url)
        result = subprocess.run(  # noqa: S603
            [_tool("psql"), "--quiet", "-v", "ON_ERROR_STOP=1", "--file", str(src), *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            raise BackupError(f"psql failed: {result.stderr.strip()}")
    else:
        raise BackupError(f"restores of {backend} databases are not supported")
