"""`trdnav db upgrade`, `import`, `export`, `backup`, `restore`: the store from the command line.

The database is ``--database-url`` or ``TRDNAV_DATABASE_URL`` (default ``sqlite:///./trdnav.db``).
Files are validated exactly as ``trdnav assess`` does; invalid input exits 2 naming file and field,
and a file with any problem stores nothing. The valid files of one ``trdnav import`` are stored in
one transaction: a run killed or failing midway imports none of them (run it again).

A patient's identity (name, date of birth, MRN: :mod:`trdnav.storage.identity`) is left out of
exported files unless ``--with-identity`` is given; it is then written as a top-level ``identity``
mapping, which ``trdnav import`` reads back (validated, stored beside the history).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from sqlalchemy import Connection, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from trdnav.core.history import History
from trdnav.errors import InputError, Problem, TrdnavError
from trdnav.history_files import decode_file, parse_history
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.storage import backup as backups
from trdnav.storage import identity as identities
from trdnav.storage import records, repository
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import upgrade
from trdnav.storage.settings import DEFAULT_DATABASE_URL, ENV_VAR, normalise_url

DatabaseUrl = Annotated[
    str,
    typer.Option("--database-url", envvar=ENV_VAR, help="SQLAlchemy URL of the database"),
]


def _report(problems: list[Problem]) -> None:
    from trdnav.cli import _report_problems  # cli imports this module: import when run

    _report_problems(tuple(problems))


def _who() -> str:
    return "cli:" + (os.environ.get("USER") or "unknown")


def _fail(code: str, message: str) -> typer.Exit:
    _report([Problem("", code, message)])
    return typer.Exit(2)


def _read_file(path: Path, kb: Knowledge, today: date) -> tuple[History, PatientIdentity | None]:
    """A history file, and the ``identity`` an export ``--with-identity`` wrote into it (if any);
    the problems of both are reported together."""
    data = decode_file(path)
    identity_data = data.pop("identity", None) if isinstance(data, dict) else None
    problems: list[Problem] = []
    identity = None
    if identity_data is not None:
        try:
            identity = identities.parse_identity(identity_data, today, "identity", str(path))
        except InputError as exc:
            problems.extend(exc.problems)
    try:
        history = parse_history(data, kb, today, str(path))
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return history, identity


def _store_all(
    url: str,
    histories: list[tuple[History, PatientIdentity | None]],
    kb: Knowledge,
    today: date,
) -> list[str]:
    """Store every history (and identity) in ONE transaction: a run that is killed or fails
    midway leaves nothing of itself (never some patients imported and others not).

    The store's functions commit each patient; here their session is joined to an outer
    transaction on one connection (``join_transaction_mode="create_savepoint"``), so each of
    their commits only releases a savepoint, and the outer transaction commits once at the end.
    SQLite's driver is put in autocommit mode on this connection and the transaction begun with
    an explicit ``BEGIN``, so that its savepoints nest inside it (pysqlite's own transaction
    handling would otherwise let the first savepoint's release commit).
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_autocommit)
        event.listen(engine, "begin", _sqlite_begin)
    stored: list[str] = []
    try:
        with engine.connect() as connection, connection.begin():
            session = Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
            try:
                for history, identity in histories:
                    pid = records.save(session, history, kb, today, _who())
                    if identity is not None:
                        identities.save_identity(session, pid, identity, user=_who())
                    stored.append(pid)
            finally:
                session.close()
    finally:
        engine.dispose()
    return stored


def _sqlite_autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def register(app: typer.Typer) -> None:
    """Add the database commands to ``app``."""
    db_app = typer.Typer(help="The database: create or upgrade its tables.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def upgrade_command(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
        """Create or upgrade the tables to the latest migration."""
        upgrade(normalise_url(database_url))
        typer.echo("database is up to date")

    @app.command("import")
    def import_command(
        files: Annotated[list[Path], typer.Argument(help="history files (YAML or JSON)")],
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
        today: Annotated[
            str | None,
            typer.Option(help="the date used when a file has no assessed_on (YYYY-MM-DD)"),
        ] = None,
    ) -> None:
        """Store histories in the database (a patient already stored is replaced)."""
        try:
            as_of = date.fromisoformat(today) if today else date.today()
        except ValueError:
            raise _fail("invalid_date", f"--today: expected YYYY-MM-DD, got {today!r}") from None
        kb = default_knowledge()
        histories = []
        failed = False
        for path in files:
            try:
                histories.append(_read_file(path, kb, as_of))
            except InputError as exc:
                _report(list(exc.problems))
                failed = True
        if histories:
            url = normalise_url(database_url)
            upgrade(url)
            try:
                stored = _store_all(url, histories, kb, as_of)
            except SQLAlchemyError as exc:
                raise _fail(
                    "import_failed",
                    f"the database refused the import ({type(exc).__name__}); nothing was imported",
                ) from None
            for pid in stored:
                typer.echo(f"stored {pid}")
        if failed:
            raise typer.Exit(2)

    @app.command("export")
    def export_command(
        patient_ids: Annotated[
            list[str] | None, typer.Argument(help="patients to export (default: all)")
        ] = None,
        out_dir: Annotated[Path, typer.Option("--out", help="folder to write to")] = Path("."),
        with_identity: Annotated[
            bool,
            typer.Option(
                "--with-identity",
                help="also write each patient's name, date of birth and identifiers "
                "(an `identity` mapping; left out by default)",
            ),
        ] = False,
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    ) -> None:
        """Write stored histories as history files (<patient id>.yaml), without identity."""
        engine = make_engine(normalise_url(database_url))
        try:
            with make_sessionmaker(engine)() as session:
                ids = patient_ids or repository.list_patients(session, user=_who())
                out_dir.mkdir(parents=True, exist_ok=True)
                for pid in ids:
                    try:
                        history = repository.load_history(session, pid, user=_who())
                    except repository.PatientNotFoundError as exc:
                        raise _fail("unknown_patient", str(exc)) from None
                    data = history.model_dump(mode="json", by_alias=True, exclude_none=True)
                    if with_identity:
                        identity = identities.load_identity(session, pid, user=_who())
                        if identity is not None:
                            data = {"identity": identities.identity_data(identity), **data}
                    target = out_dir / f"{pid}.yaml"
                    target.write_text(
                        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
                    )
                    typer.echo(f"wrote {target}")
        finally:
            engine.dispose()

    @app.command("backup")
    def backup_command(
        out_file: Annotated[Path, typer.Argument(help="the backup file to write")],
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    ) -> None:
        """Back up the database (SQLite: a database file; PostgreSQL: a pg_dump SQL file)."""
        try:
            backups.backup(normalise_url(database_url), out_file)
        except TrdnavError as exc:
            raise _fail("backup_failed", str(exc)) from None
        typer.echo(f"wrote {out_file}")

    @app.command("restore")
    def restore_command(
        in_file: Annotated[Path, typer.Argument(help="a backup written by `trdnav backup`")],
        database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    ) -> None:
        """Replace the database's content with a backup."""
        try:
            backups.restore(normalise_url(database_url), in_file)
        except TrdnavError as exc:
            raise _fail("restore_failed", str(exc)) from None
        typer.echo(f"restored {in_file}")
