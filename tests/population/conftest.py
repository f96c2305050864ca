"""Shared fixtures of the population tests: one loader per backend.

``backend`` is parametrised over ``duckdb``, ``postgres`` and ``spark``; ``duckdb`` is the DuckDB
case alone (for the many rule tests). Each gives a :class:`Backend` whose ``load(tables)`` puts
Arrow tables into a fresh place and returns Ibis tables:

- duckdb: a fresh in-memory connection per load;
- postgres: a fresh schema in the ``test`` database, dropped after the test
  (``TRDNAV_SKIP_POSTGRES=1`` skips);
- spark: temporary views (uniquely prefixed) in one Spark session per test session
  (``TRDNAV_SKIP_SPARK=1`` skips).

``backend.omop(tables)`` returns the :class:`~trdnav.population.schema.OmopTables` directly.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pytest

from trdnav.population.schema import OmopTables, omop_tables

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
SPARK_WARNING_FILTERS = (
    "ignore::ResourceWarning",
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)
"""PySpark's socket and pandas-conversion warnings (pytest turns warnings into errors); added to
every test that runs on the ``spark`` backend."""
_VIEWS = itertools.count()


@dataclass
class Backend:
    name: str
    load: Callable[[dict[str, pa.Table]], dict[str, ir.Table]]
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def omop(self, tables: dict[str, pa.Table]) -> OmopTables:
        return omop_tables(self.load(tables))


def _duckdb() -> Backend:
    def load(tables: dict[str, pa.Table]) -> dict[str, ir.Table]:
        con = ibis.duckdb.connect()
        # create_table(obj=<pyarrow>) trips over sqlglot 30 in Ibis 12; a memtable works
        return {name: con.create_table(name, ibis.memtable(t)) for name, t in tables.items()}

    return Backend("duckdb", load)


def _postgres() -> Backend:
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
    backend = Backend("postgres", lambda tables: {})

    def load(tables: dict[str, pa.Table]) -> dict[str, ir.Table]:
        schema = f"omop_{uuid.uuid4().hex[:12]}"
        admin = ibis.postgres.connect(**PG)
        admin.raw_sql(f'CREATE SCHEMA "{schema}"').close()
        con = ibis.postgres.connect(**PG, schema=schema)

        def drop() -> None:
            con.disconnect()
            admin.raw_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE').close()
            admin.disconnect()

        backend.cleanups.append(drop)
        return {
            name: con.create_table(name, ibis.memtable(t), database=schema)
            for name, t in tables.items()
        }

    backend.load = load
    return backend


@pytest.fixture(scope="package")
def spark_session() -> Iterator[Any]:
    if os.environ.get("TRDNAV_SKIP_SPARK") == "1":
        pytest.skip("TRDNAV_SKIP_SPARK=1: Spark tests skipped on request")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("trdnav-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        # tiny test data: code generation and adaptive planning cost more than they save
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # short-lived test JVM: the C1 JIT alone compiles far less (a cold phenotype run on the
        # rule scenarios drops from ~70 s to ~40 s on two busy cores)
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _spark(session: Any) -> Backend:
    con = ibis.pyspark.connect(session)

    def load(tables: dict[str, pa.Table]) -> dict[str, ir.Table]:
        prefix = f"t{next(_VIEWS)}"
        out: dict[str, ir.Table] = {}
        for name, t in tables.items():
            view = f"{prefix}_{name}"
            session.createDataFrame(t).createOrReplaceTempView(view)
            out[name] = con.table(view)
        return out

    return Backend("spark", load)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "spark":
            item.add_marker(pytest.mark.filterwarnings(*SPARK_WARNING_FILTERS))


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A loader on each backend in turn."""
    if request.param == "duckdb":
        b = _duckdb()
    elif request.param == "postgres":
        b = _postgres()
    else:
        b = _spark(request.getfixturevalue("spark_session"))
    yield b
    for cleanup in b.cleanups:
        cleanup()


@pytest.fixture
def duckdb_backend() -> Backend:
    """The DuckDB loader alone."""
    return _duckdb()
