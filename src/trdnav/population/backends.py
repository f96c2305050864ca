"""Open OMOP CDM data on DuckDB, PostgreSQL or Spark: an Ibis connection plus the OMOP tables.

:func:`open_omop` takes what a user types after ``trdnav cohort --omop``:

=====================================  =========================================================
``omop/`` (a folder)                   DuckDB in memory, a view per ``<table>.parquet`` (or
                                       ``<table>/`` folder of Parquet parts, or ``<table>.csv``)
``omop.duckdb`` / ``omop.db``          that DuckDB file, read only
``postgresql://user@host:5432/db``     PostgreSQL (also ``postgresql+psycopg://``); the schema
                                       from ``?schema=omop`` or ``schema=``, else ``public``
``spark-local`` / ``spark://host:7077``  Spark (local[2], or that master) reading the Parquet
                                       folder ``omop_path``
=====================================  =========================================================

Only the OMOP tables the phenotype knows (:data:`~trdnav.population.schema.REQUIRED` and
:data:`~trdnav.population.schema.OPTIONAL`) are taken, under lower-case names, with lower-case
column names. Whatever cannot be opened raises :class:`~trdnav.errors.InputError` saying what was
expected; checking the tables' columns is :func:`~trdnav.population.schema.check_tables`' job.

CSV has no types: DuckDB infers them (ISO dates come out as dates). A column the phenotype reads
as a string is read as text (codes keep their leading zeros); a date or number column that came out
as text only because it is empty, or whose every value converts, is converted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import ibis
import ibis.expr.types as ir

from trdnav.errors import InputError, Problem
from trdnav.population.schema import OPTIONAL, REQUIRED, Family

BackendName = Literal["duckdb", "postgres", "pyspark"]

OMOP_TABLES: tuple[str, ...] = (*REQUIRED, *OPTIONAL)
"""The tables :func:`open_omop` looks for (every other table or file is left alone)."""

ACCEPTED_FORMS = (
    "a folder of Parquet files (<table>.parquet, or <table>/ folders of Parquet parts), "
    "a folder of CSV files (<table>.csv), a DuckDB file (.duckdb or .db), "
    "a PostgreSQL URL (postgresql://user@host:5432/database?schema=omop), "
    "'spark-local' or a Spark master URL (spark://host:7077) with --omop-path"
)

SPARK_LOCAL_MASTER = "local[2]"
SPARK_CONFIG: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
"""Spark settings: no web UI or progress bars, few shuffle partitions (small local data), UTC."""

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""

_CAST_TO: Mapping[Family, str] = {"integer": "int64", "numeric": "float64", "date": "date"}


@dataclass
class OmopSource:
    """An open OMOP database: the Ibis connection and its OMOP tables (lower-case names)."""

    con: Any
    tables: dict[str, ir.Table]
    backend: BackendName
    description: str
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        """Release the connection (and the Spark session when :func:`open_omop` started it)."""
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            closer()

    def __enter__(self) -> OmopSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(loc: str, code: str, message: str) -> InputError:
    return InputError([Problem(loc, code, message)])


def _lower_columns(table: ir.Table) -> ir.Table:
    columns = list(table.columns)
    if all(c == c.lower() for c in columns):
        return table
    return table.rename({c.lower(): c for c in columns})


def _wanted(name: str) -> Mapping[str, Family]:
    return REQUIRED.get(name) or OPTIONAL.get(name) or {}


# --- DuckDB: folders and files -------------------------------------------------------------------


def _folder_entries(folder: Path) -> dict[str, tuple[str, Path]]:
    """OMOP table name -> (kind, path) for the Parquet and CSV files of ``folder``."""
    found: dict[str, tuple[str, Path]] = {}
    for entry in sorted(folder.iterdir()):
        name = entry.name.lower()
        if entry.is_dir() and name in OMOP_TABLES and any(entry.rglob("*.parquet")):
            found.setdefault(name, ("parquet_dir", entry))
        elif entry.is_file() and entry.suffix.lower() == ".parquet":
            stem = entry.stem.lower()
            if stem in OMOP_TABLES:
                found[stem] = ("parquet", entry)
        elif entry.is_file() and entry.suffix.lower() == ".csv":
            stem = entry.stem.lower()
            if stem in OMOP_TABLES:
                found.setdefault(stem, ("csv", entry))
    return found


def _read_csv(con: Any, name: str, path: Path) -> ir.Table:
    table = con.read_csv(str(path), table_name=name)
    by_lower = {c.lower(): c for c in table.columns}
    wanted = _wanted(name)
    as_text = {
        by_lower[col]: "VARCHAR"
        for col, family in wanted.items()
        if family == "string" and col in by_lower and not table[by_lower[col]].type().is_string()
    }
    if as_text:
        table = con.read_csv(str(path), table_name=name, types=as_text)
    table = _lower_columns(table)
    # text columns the phenotype reads as dates or numbers: convert when every value converts
    candidates = {
        col: _CAST_TO[family]
        for col, family in wanted.items()
        if family != "string" and col in table.columns and table[col].type().is_string()
    }
    if not candidates:
        return table
    failures = table.aggregate(
        **{
            col: (table[col].notnull() & table[col].try_cast(to).isnull()).sum()
            for col, to in candidates.items()
        }
    ).to_pyarrow()
    convert = {col: to for col, to in candidates.items() if not failures[col][0].as_py()}
    if not convert:
        return table
    return table.mutate(**{col: table[col].try_cast(to) for col, to in convert.items()})


def _open_folder(folder: Path) -> OmopSource:
    entries = _folder_entries(folder)
    if not entries:
        raise _error(
            "--omop",
            "no_omop_tables",
            f"{folder} holds no OMOP tables: expected files such as person.parquet or "
            f"person.csv (tables: {', '.join(OMOP_TABLES)})",
        )
    con = ibis.duckdb.connect()
    tables: dict[str, ir.Table] = {}
    kinds: set[str] = set()
    try:
        for name, (kind, path) in entries.items():
            if kind == "parquet":
                tables[name] = _lower_columns(con.read_parquet(str(path), table_name=name))
            elif kind == "parquet_dir":
                glob = str(path / "**" / "*.parquet")
                tables[name] = _lower_columns(con.read_parquet(glob, table_name=name))
            else:
                tables[name] = _read_csv(con, name, path)
            kinds.add("CSV" if kind == "csv" else "Parquet")
    except Exception as exc:  # noqa: BLE001 (DuckDB's errors: unreadable or malformed file)
        con.disconnect()
        raise _error("--omop", "unreadable", f"cannot read {path}: {_first_line(exc)}") from None
    kind_text = " and ".join(sorted(kinds))
    return OmopSource(con, tables, "duckdb", f"{kind_text} folder {folder}", [con.disconnect])


def _open_duckdb_file(path: Path, schema: str | None) -> OmopSource:
    try:
        con = ibis.duckdb.connect(str(path), read_only=True)
    except Exception as exc:  # noqa: BLE001 (not a DuckDB file, locked, unreadable)
        raise _error(
            "--omop", "unreadable", f"cannot open the DuckDB file {path}: {_first_line(exc)}"
        ) from None
    # information_schema rather than Ibis' list_tables (which calls a DuckDB API deprecated in 1.5)
    names = [
        row[0]
        for row in con.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_catalog = current_database() "
            "AND table_schema = coalesce(?, current_schema())",
            [schema],
        ).fetchall()
    ]
    tables = _pick_tables(con, names, schema)
    where = f"DuckDB file {path}" + (f" (schema {schema})" if schema else "")
    if not tables:
        con.disconnect()
        raise _no_tables(where)
    return OmopSource(con, tables, "duckdb", where, [con.disconnect])


def _pick_tables(con: Any, names: list[str], database: str | None) -> dict[str, ir.Table]:
    tables: dict[str, ir.Table] = {}
    for actual in sorted(names):
        name = actual.lower()
        if name in OMOP_TABLES and name not in tables:
            table = con.table(actual, database=database) if database else con.table(actual)
            tables[name] = _lower_columns(table)
    return tables


def _no_tables(where: str) -> InputError:
    return _error(
        "--omop",
        "no_omop_tables",
        f"{where} holds none of the OMOP tables {', '.join(OMOP_TABLES)}",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# --- PostgreSQL ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresTarget:
    """Where a PostgreSQL URL points: connection settings and the schema."""

    host: str
    port: int
    user: str | None
    password: str | None
    database: str | None
    schema: str

    @property
    def display(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"postgresql://{who}{self.host}:{self.port}/{self.database or ''}"


def parse_postgres_url(url: str, schema: str | None = None) -> PostgresTarget:
    """The connection settings in ``url``; ``schema`` wins over ``?schema=``, default ``public``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    try:
        port = parts.port or 5432
    except ValueError:
        raise _error("--omop", "invalid_url", f"{url}: the port is not a number") from None
    database = unquote(parts.path.lstrip("/")) or None
    return PostgresTarget(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        database=database,
        schema=schema or (query.get("schema") or query.get("search_path") or ["public"])[0],
    )


def postgres_connect(target: PostgresTarget) -> Any:
    """An Ibis PostgreSQL connection, or an InputError saying the server cannot be reached."""
    try:
        return ibis.postgres.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            database=target.database,
            connect_timeout=10,
        )
    except Exception as exc:  # noqa: BLE001 (psycopg.OperationalError and friends)
        raise _error(
            "--omop",
            "unreachable",
            f"cannot connect to PostgreSQL at {target.display}: {_first_line(exc)}",
        ) from None


def _open_postgres(url: str, schema: str | None) -> OmopSource:
    target = parse_postgres_url(url, schema)
    con = postgres_connect(target)
    names = con.list_tables(database=target.schema)
    where = f"PostgreSQL {target.display} schema {target.schema}"
    tables = _pick_tables(con, names, target.schema)
    if not tables:
        con.disconnect()
        raise _no_tables(where)
    return OmopSource(con, tables, "postgres", where, [con.disconnect])


def load_parquet_folder_into_postgres(
    folder: Path, url: str, schema: str | None = None, *, replace: bool = True
) -> list[str]:
    """Copy the OMOP Parquet tables of ``folder`` into PostgreSQL (``schema``, created if needed).

    Meant for test-sized data and operators trying the PostgreSQL backend: each table is created
    from its Parquet schema and filled with one ``COPY`` of its rows as CSV. Returns the table
    names loaded.
    """
    import pyarrow.parquet as pq

    entries = {n: p for n, (k, p) in _folder_entries(folder).items() if k != "csv"}
    if not entries:
        raise _no_tables(f"the folder {folder}")
    arrow = {name: pq.read_table(path) for name, path in entries.items()}
    target = parse_postgres_url(url, schema)
    con = postgres_connect(target)
    try:
        load_arrow_into_postgres(con, arrow, target.schema, replace=replace)
    finally:
        con.disconnect()
    return sorted(arrow)


def load_arrow_into_postgres(
    con: Any, tables: Mapping[str, Any], schema: str, *, replace: bool = True
) -> None:
    """Create ``schema`` (if missing) and one table per pyarrow table in it, filled by COPY."""
    import io

    import pyarrow.csv as pacsv

    raw = con.con  # the psycopg connection under the Ibis backend
    with raw.cursor() as cur, raw.transaction():
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    for name, data in tables.items():
        ibis_schema = ibis.Schema.from_pyarrow(data.schema)
        if replace:
            with raw.cursor() as cur, raw.transaction():
                cur.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
        con.create_table(name, schema=ibis_schema, database=schema)
        buffer = io.BytesIO()
        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
        columns = ", ".join(f'"{c}"' for c in data.column_names)
        with raw.cursor() as cur, raw.transaction():
            copy_sql = f'COPY "{schema}"."{name}" ({columns}) FROM STDIN WITH (FORMAT csv)'
            with cur.copy(copy_sql) as copy:
                copy.write(buffer.getvalue())


# --- Spark ---------------------------------------------------------------------------------------


def check_spark_master(master: str) -> None:
    """A ``spark://`` master that refuses connections fails now (Spark itself retries ~90 s)."""
    import socket

    hosts = master[len("spark://") :].split(",")
    reasons: list[str] = []
    for hostport in hosts:
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise _error(
                "--omop", "invalid_url", f"{master}: expected spark://host:port (e.g. :7077)"
            )
        try:
            with socket.create_connection((host, int(port)), timeout=5):
                return
        except OSError as exc:
            reasons.append(f"{hostport}: {exc.strerror or exc}")
    raise _error(
        "--omop",
        "unreachable",
        f"cannot reach the Spark master {master} ({'; '.join(reasons)})",
    )


def spark_session(master: str = SPARK_LOCAL_MASTER) -> tuple[Any, bool]:
    """A Spark session on ``master`` (the running one if on that master) and whether it is new.

    Quiet (errors only), without web UI, in UTC; the workers run this interpreter
    (``PYSPARK_PYTHON``) unless it is set.
    """
    from pyspark.sql import SparkSession

    if master.startswith("spark://"):
        check_spark_master(master)
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if running != master:
            raise _error(
                "--omop",
                "spark_running",
                f"a Spark session on {running} is already running in this process; "
                f"cannot also connect to {master}",
            )
        return active, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    log4j = Path(tempfile.gettempdir()) / "trdnav-spark-log4j2.properties"
    if not log4j.exists():
        log4j.write_text(_LOG4J2, encoding="utf-8")
    builder = SparkSession.builder.master(master).appName("trdnav-cohort")
    for key, value in SPARK_CONFIG.items():
        builder = builder.config(key, value)
    builder = builder.config(
        "spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile=file:{log4j}"
    ).config("spark.sql.warehouse.dir", str(Path(tempfile.gettempdir()) / "trdnav-spark-warehouse"))
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 (no Java, unreachable master)
        raise _error(
            "--omop", "spark_unavailable", f"cannot start Spark on {master}: {_first_line(exc)}"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session, True


@contextlib.contextmanager
def quiet_spark_warnings() -> Iterator[None]:
    """Silence the warnings PySpark's own pandas conversion and sockets raise (not ours to fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pyspark\..*")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\..*")
        warnings.filterwarnings("ignore", message=r".*copy keyword is deprecated.*")
        yield


def _open_spark(master: str, omop_path: Path | None, label: str) -> OmopSource:
    if omop_path is None:
        raise _error(
            "--omop-path",
            "missing",
            f"--omop {label}: Spark reads Parquet; give the folder with --omop-path",
        )
    if not omop_path.is_dir():
        raise _error("--omop-path", "not_found", f"{omop_path} is not a folder")
    entries = {n: p for n, (k, p) in _folder_entries(omop_path).items() if k != "csv"}
    if not entries:
        raise _error(
            "--omop-path",
            "no_omop_tables",
            f"{omop_path} holds no OMOP Parquet tables (person.parquet or person/ …; "
            f"tables: {', '.join(OMOP_TABLES)})",
        )
    session, started = spark_session(master)
    con = ibis.pyspark.connect(session)
    tables: dict[str, ir.Table] = {}
    # views of this source only: another open_omop in the same session does not replace them
    tag = uuid.uuid4().hex[:8]
    views = [f"omop_{name}_{tag}" for name in entries]
    try:
        for (name, path), view in zip(entries.items(), views, strict=True):
            tables[name] = _lower_columns(con.read_parquet(str(path.resolve()), table_name=view))
    except Exception as exc:  # noqa: BLE001 (Spark's AnalysisException: unreadable Parquet)
        if started:
            session.stop()
        raise _error(
            "--omop-path", "unreadable", f"cannot read {path}: {_first_line(exc)}"
        ) from None

    def drop_views() -> None:
        for view in views:
            session.catalog.dropTempView(view)

    closers: list[Callable[[], None]] = [session.stop] if started else [drop_views]
    return OmopSource(con, tables, "pyspark", f"Spark {master} over {omop_path}", closers)


# --- results ------------------------------------------------------------------------------------


def normalise_arrow(table: Any) -> Any:
    """``table`` with one type per kind whatever the backend: int64, float64 (decimals too), string.

    PostgreSQL, DuckDB and Spark give the same values in different widths (int32 or int64,
    numeric or double); the files ``trdnav cohort`` writes should not depend on the backend.
    """
    import pyarrow as pa

    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_integer(t):
            t = pa.int64()
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            t = pa.float64()
        elif pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_date64(t):
            t = pa.date32()
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields))


def to_arrow(expr: ir.Table, *, sort_by: str | None = None) -> Any:
    """Execute ``expr`` into a pyarrow table with :func:`normalise_arrow` types, sorted if asked."""
    backend = ibis.get_backend(expr)
    quiet = quiet_spark_warnings() if backend.name == "pyspark" else contextlib.nullcontext()
    with quiet:
        table = normalise_arrow(expr.to_pyarrow())
    if sort_by is not None and sort_by in table.column_names:
        table = table.sort_by([(sort_by, "ascending")])
    return table


# --- the entry point -----------------------------------------------------------------------------


def open_omop(url: str, *, omop_path: Path | None = None, schema: str | None = None) -> OmopSource:
    """Open the OMOP data ``url`` names (see the module docstring for the accepted forms)."""
    text = url.strip()
    lowered = text.lower()
    if lowered.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return _open_postgres(text, schema)
    if lowered == "spark-local":
        return _open_spark(SPARK_LOCAL_MASTER, omop_path, text)
    if lowered.startswith("spark://") or lowered.startswith("local["):
        return _open_spark(text, omop_path, text)
    if lowered.startswith("duckdb://"):
        text = text[len("duckdb://") :]
    elif "://" in text:
        raise _error("--omop", "unknown_url", f"{url}: not an accepted form; use {ACCEPTED_FORMS}")
    path = Path(text).expanduser()
    if path.is_dir():
        return _open_folder(path)
    if path.is_file():
        if path.suffix.lower() in (".duckdb", ".db", ".ddb"):
            return _open_duckdb_file(path, schema)
        raise _error("--omop", "unknown_url", f"{url}: not an accepted form; use {ACCEPTED_FORMS}")
    raise _error("--omop", "not_found", f"{url}: no such file or folder; use {ACCEPTED_FORMS}")
