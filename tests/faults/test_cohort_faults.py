"""A database failure in the middle of `trdnav cohort`: one line naming the step, exit 1, no
traceback, and no output file (not even those of the stages that had finished).

The failures are real database errors, injected in the database, never in the phenotype's code:

- a table replaced by a view whose column the database cannot convert when a query reads it
  (DuckDB file and PostgreSQL: the column's type looks right, so the table check passes, and the
  failure comes from the middle of the run);
- on PostgreSQL, the command's session ended by the server (``pg_terminate_backend``) while one of
  its queries runs (a view that sleeps gives the test the moment).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import Result
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from trdnav.cli import app

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_OMOP = "postgresql://postgres@127.0.0.1:5432/test"
PERSONS = 200
OUTPUTS = ("cohort.parquet", "cohort_features.parquet", "attrition.md", "attrition.csv")
STEP = re.compile(r"the phenotype failed at step '([^']+)': (.+)")
runner = CliRunner()


@pytest.fixture(scope="module")
def omop_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trdnav.population.synth import generate_omop

    folder = tmp_path_factory.mktemp("synth") / "omop"
    generate_omop(folder, persons=PERSONS, seed=11, chunk_size=PERSONS)
    return folder


def _unconvertible(table: str, column: str, columns: list[str], cast: str) -> str:
    """A view of ``<table>_raw`` whose ``column`` is a text no database can read as a date."""
    key = columns[0]
    select = [
        f"CAST(CAST({key} AS {cast}) || '-not-a-date' AS DATE) AS {column}"
        if name == column
        else name
        for name in columns
    ]
    return f"CREATE VIEW {table} AS SELECT {', '.join(select)} FROM {table}_raw"  # noqa: S608


def _duckdb_file(folder: Path, path: Path, broken: str, column: str) -> Path:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        for part in sorted(folder.glob("*.parquet")):
            name = part.stem + ("_raw" if part.stem == broken else "")
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{part}')")  # noqa: S608
        columns = pq.read_schema(folder / f"{broken}.parquet").names
        con.execute(_unconvertible(broken, column, columns, "VARCHAR"))
    finally:
        con.close()
    return path


@pytest.fixture
def pg_schema(omop_folder: Path) -> Iterator[str]:
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
    from trdnav.population.backends import load_parquet_folder_into_postgres

    schema = f"omop_fault_{uuid.uuid4().hex[:10]}"
    load_parquet_folder_into_postgres(omop_folder, PG_OMOP, schema)
    yield schema
    engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _pg_view(schema: str, table: str, sql: str) -> None:
    engine = create_engine(PG_SERVER)
    with engine.begin() as conn:
        conn.execute(text(f'SET search_path TO "{schema}"'))
        conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_raw"))
        conn.execute(text(sql))
    engine.dispose()


def _assert_failed_cleanly(exit_code: int, stderr: str, out: Path) -> str:
    """Exit 1, one line naming the step, no traceback, no file in the output folder; the step."""
    assert exit_code == 1, stderr
    assert "Traceback" not in stderr
    found = STEP.search(stderr)
    assert found is not None, stderr
    assert "nothing was written" in stderr
    assert sorted(p.name for p in out.parent.iterdir()) == []  # no output, no temporary file
    return found.group(1)


def _cohort(omop: str, out: Path) -> Result:
    out.parent.mkdir(parents=True, exist_ok=True)
    return runner.invoke(app, ["cohort", "--omop", omop, "--out", str(out)])


def test_a_duckdb_error_inside_the_phenotype_names_the_step_and_writes_nothing(
    omop_folder: Path, tmp_path: Path
) -> None:
    db = _duckdb_file(
        omop_folder, tmp_path / "omop.duckdb", "drug_exposure", "drug_exposure_end_date"
    )
    out = tmp_path / "out" / "cohort.parquet"
    result = _cohort(str(db), out)
    step = _assert_failed_cleanly(result.exit_code, result.stderr, out)
    assert step == "drug eras"
    assert "ConversionException" in result.stderr


def test_a_duckdb_error_after_the_cohort_was_written_leaves_no_cohort_file(
    omop_folder: Path, tmp_path: Path
) -> None:
    # the PHQ-9 measurements are read only for the features, after the cohort file was written
    db = _duckdb_file(omop_folder, tmp_path / "omop.duckdb", "measurement", "measurement_date")
    out = tmp_path / "out" / "cohort.parquet"
    result = _cohort(str(db), out)
    assert "✓ writing the cohort" in result.stderr
    step = _assert_failed_cleanly(result.exit_code, result.stderr, out)
    assert step == "writing the features"


def test_an_earlier_runs_files_are_left_as_they_were_by_a_failed_run(
    omop_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "cohort.parquet"
    assert _cohort(str(omop_folder), out).exit_code == 0
    before = {name: (out.parent / name).read_bytes() for name in OUTPUTS}
    db = _duckdb_file(omop_folder, tmp_path / "omop.duckdb", "measurement", "measurement_date")
    result = _cohort(str(db), out)
    assert result.exit_code == 1, result.output
    after = {p.name: p.read_bytes() for p in out.parent.iterdir() if p.name in before}
    assert after == before
    assert not [p for p in out.parent.iterdir() if ".partial-" in p.name]


def test_a_postgresql_error_inside_the_phenotype_names_the_step_and_writes_nothing(
    omop_folder: Path, pg_schema: str, tmp_path: Path
) -> None:
    columns = pq.read_schema(omop_folder / "drug_exposure.parquet").names
    view = _unconvertible("drug_exposure", "drug_exposure_end_date", columns, "TEXT")
    _pg_view(pg_schema, "drug_exposure", view)
    out = tmp_path / "out" / "cohort.parquet"
    result = _cohort(f"{PG_OMOP}?schema={pg_schema}", out)
    step = _assert_failed_cleanly(result.exit_code, result.stderr, out)
    assert step == "drug eras"
    assert "InvalidDatetimeFormat" in result.stderr


def test_the_postgresql_session_ended_mid_run_is_reported_as_a_lost_connection(
    omop_folder: Path, pg_schema: str, tmp_path: Path
) -> None:
    # a phenotype step reading drug_exposure first waits 30 s inside the database: the moment
    # to end its session (the opening of the data, which reads no rows, does not wait)
    _pg_view(
        pg_schema,
        "drug_exposure",
        "CREATE VIEW drug_exposure AS SELECT d.* FROM drug_exposure_raw AS d CROSS JOIN "
        "(SELECT pg_sleep(CASE WHEN current_query() LIKE '%trdnav_tmp%' THEN 30 ELSE 0 END)) "
        "AS wait",
    )
    out = tmp_path / "out" / "cohort.parquet"
    out.parent.mkdir()
    script = Path(sys.executable).with_name("trdnav")
    command = [str(script), "cohort", "--omop", f"{PG_OMOP}?schema={pg_schema}", "--out", str(out)]
    name = f"trdnav-fault-{uuid.uuid4().hex[:8]}"  # the command's sessions, for libpq
    env = {**os.environ, "PGAPPNAME": name}
    ended: list[int] = []

    def end_session() -> None:
        engine = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + 60
        with engine.connect() as conn:
            while not ended and time.monotonic() < deadline:
                ended.extend(
                    conn.execute(
                        text(
                            # the select list runs only for the rows the WHERE clause keeps
                            "SELECT pid FROM (SELECT pid, pg_terminate_backend(pid) AS ended "
                            "FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                            "AND application_name = :name) AS t WHERE ended"
                        ),
                        {"name": name},
                    ).scalars()
                )
                time.sleep(0.05)
        engine.dispose()

    killer = threading.Thread(target=end_session)
    killer.start()
    started = time.monotonic()
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    killer.join(timeout=70)
    assert len(ended) == 1, run.stderr
    assert time.monotonic() - started < 25, run.stderr  # ended mid-wait, not after it
    _assert_failed_cleanly(run.returncode, run.stderr, out)
    assert "the database connection was lost" in run.stderr
