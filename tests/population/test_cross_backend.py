"""The same synthetic OMOP data on DuckDB (Parquet folder), PostgreSQL (a fresh schema) and Spark
(local mode) give identical cohorts, features and attrition through ``trdnav cohort``.

One synthetic set (the generator's, :data:`PERSONS` persons) is written once; each backend runs the
whole command on it (one module-scoped fixture per backend, so ``pytest --durations`` shows each
backend's seconds). The files are compared with exact equality: values, types, order. The DuckDB
run is also compared with :func:`run_phenotype` called directly, so the files are the phenotype's
own result and not a rewriting of it.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.population.test_backends import PG_DATABASE_URL, SPARK_WARNINGS
from trdnav.cli import app
from trdnav.knowledge.load import Knowledge
from trdnav.population.backends import (
    load_parquet_folder_into_postgres,
    open_omop,
    parse_postgres_url,
    postgres_connect,
    to_arrow,
)
from trdnav.population.report import attrition_rows

PERSONS = 2_000
SEED = 23
runner = CliRunner()


@dataclass(frozen=True)
class Run:
    """What ``trdnav cohort`` wrote on one backend."""

    backend: str
    cohort: pa.Table
    features: pa.Table
    attrition: pa.Table
    seconds: float
    stdout: str


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trdnav.population.synth import generate_omop

    folder = tmp_path_factory.mktemp("cross") / "omop"
    generate_omop(folder, persons=PERSONS, seed=SEED, chunk_size=PERSONS)
    return folder


def _run(backend: str, omop: str, out_dir: Path, *extra: str) -> Run:
    out = out_dir / "cohort.parquet"
    started = time.perf_counter()
    result = runner.invoke(app, ["cohort", "--omop", omop, "--out", str(out), *extra])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return Run(
        backend,
        pq.read_table(out),
        pq.read_table(out_dir / "cohort_features.parquet"),
        pacsv.read_csv(out_dir / "attrition.csv"),
        seconds,
        result.stdout,
    )


@pytest.fixture(scope="module")
def duckdb_run(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run("duckdb", str(synthetic), tmp_path_factory.mktemp("duckdb"))


@pytest.fixture(scope="module")
def postgres_run(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
    schema = f"omop_cross_{uuid.uuid4().hex[:10]}"
    try:
        load_parquet_folder_into_postgres(synthetic, PG_DATABASE_URL, schema)
        yield _run(
            "postgres",
            f"{PG_DATABASE_URL}?schema={schema}",
            tmp_path_factory.mktemp("postgres"),
        )
    finally:
        con = postgres_connect(parse_postgres_url(PG_DATABASE_URL))
        try:
            con.raw_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            con.disconnect()


@pytest.fixture(scope="module")
def spark_run(synthetic: Path, tmp_path_factory: pytest.TempPathFactory, spark_session: Any) -> Run:
    # the test run's Spark session (conftest.py) is running: open_omop uses it, close() keeps it
    return _run(
        "spark",
        "spark-local",
        tmp_path_factory.mktemp("spark"),
        "--omop-path",
        str(synthetic),
    )


def _first_difference(expected: pa.Table, got: pa.Table) -> str:
    if expected.schema != got.schema:
        return f"schemas differ:\n{expected.schema}\nvs\n{got.schema}"
    if expected.num_rows != got.num_rows:
        return f"{expected.num_rows} rows vs {got.num_rows}"
    for i, (a, b) in enumerate(zip(expected.to_pylist(), got.to_pylist(), strict=True)):
        if a != b:
            columns = [k for k in a if a[k] != b[k]]
            return f"row {i} differs in {columns}: {a} vs {b}"
    return "equal"


def _assert_identical(reference: Run, other: Run) -> None:
    for part in ("cohort", "features", "attrition"):
        expected, got = getattr(reference, part), getattr(other, part)
        assert got.equals(expected), (
            f"{other.backend} {part} differs from {reference.backend}: "
            f"{_first_difference(expected, got)}"
        )


def test_the_duckdb_run_finds_a_cohort_that_is_the_phenotypes_result(
    duckdb_run: Run, synthetic: Path, kb: Knowledge
) -> None:
    from trdnav.population.phenotype import run_phenotype
    from trdnav.population.schema import omop_tables

    persons = duckdb_run.attrition["persons"].to_pylist()
    assert persons[0] == PERSONS
    assert all(a >= b for a, b in itertools.pairwise(persons))  # never grows
    assert persons[-1] == duckdb_run.cohort.num_rows > 0
    assert duckdb_run.features.num_rows == duckdb_run.cohort.num_rows

    with open_omop(str(synthetic)) as source:
        result = run_phenotype(omop_tables(source.tables), kb)
        cohort = to_arrow(result.cohort, sort_by="subject_id")
        features = to_arrow(result.features, sort_by="subject_id")
        attrition = attrition_rows(result.attrition)
    assert cohort.to_pylist() == duckdb_run.cohort.to_pylist()
    assert features.equals(duckdb_run.features)
    assert [r.persons for r in attrition] == persons
    assert [r.criterion for r in attrition] == duckdb_run.attrition["criterion"].to_pylist()


def test_postgres_gives_the_same_cohort_features_and_attrition(
    duckdb_run: Run, postgres_run: Run
) -> None:
    assert "PostgreSQL" in postgres_run.stdout
    _assert_identical(duckdb_run, postgres_run)


@pytest.mark.filterwarnings(*SPARK_WARNINGS)
def test_spark_gives_the_same_cohort_features_and_attrition(
    duckdb_run: Run, spark_run: Run
) -> None:
    assert "Spark local[2]" in spark_run.stdout
    _assert_identical(duckdb_run, spark_run)
