"""`trdnav cohort`: the cohort, features and attrition report from a Parquet folder and from
PostgreSQL; and every user mistake (missing table or column, wrong type, empty person table, bad
URL, unwritable output) exits 2 with a message naming it, never a traceback.

The command on Spark (``--omop spark-local``) is run by tests/population/test_cross_backend.py,
which compares its files with those of DuckDB and PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.population.test_backends import (
    PG_DATABASE_URL,
    tiny_omop,
    write_parquet_folder,
)
from trdnav.cli import app
from trdnav.knowledge.load import Knowledge
from trdnav.population.backends import (
    load_parquet_folder_into_postgres,
    parse_postgres_url,
    postgres_connect,
)
from trdnav.population.report import NOTICE

runner = CliRunner()
SYNTH_PERSONS = 600
SYNTH_SEED = 11
COHORT_COLUMNS = ["cohort_definition_id", "subject_id", "cohort_start_date", "cohort_end_date"]


def _cohort(*args: str) -> Result:
    return runner.invoke(app, ["cohort", *args])


def _assert_clean_failure(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic OMOP Parquet folder (the generator's), with TRD journeys in it."""
    from trdnav.population.synth import generate_omop

    folder = tmp_path_factory.mktemp("synth") / "omop"
    generate_omop(folder, persons=SYNTH_PERSONS, seed=SYNTH_SEED, chunk_size=SYNTH_PERSONS)
    return folder


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    return write_parquet_folder(tmp_path / "omop", tiny_omop())


@pytest.fixture
def pg_schema() -> Iterator[str]:
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
    name = f"omop_cli_{uuid.uuid4().hex[:10]}"
    yield name
    con = postgres_connect(parse_postgres_url(PG_DATABASE_URL))
    try:
        con.raw_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        con.disconnect()


# --- the happy path ------------------------------------------------------------------------------


def _run_ok(omop: str, out: Path, *extra: str) -> Result:
    result = _cohort("--omop", omop, "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def test_a_parquet_folder_gives_cohort_features_and_attrition_report(
    synthetic_folder: Path, tmp_path: Path, kb: Knowledge
) -> None:
    out = tmp_path / "trd_cohort.parquet"
    result = _run_ok(str(synthetic_folder), out)
    cohort = pq.read_table(out)
    assert cohort.column_names == COHORT_COLUMNS
    assert cohort.schema.field("cohort_start_date").type == pa.date32()
    assert cohort.num_rows > 0, "the synthetic data holds TRD journeys: the cohort is not empty"
    ids = cohort["subject_id"].to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # one row per person, in order
    definition = kb.population.parameters.cohort_definition_id.value
    assert set(cohort["cohort_definition_id"].to_pylist()) == {definition}
    features = pq.read_table(tmp_path / "trd_cohort_features.parquet")
    assert features.num_rows == cohort.num_rows
    assert sorted(features["subject_id"].to_pylist()) == ids

    report = (tmp_path / "attrition.md").read_text(encoding="utf-8")
    assert NOTICE in report
    assert f"Knowledge base: version {kb.kb_version}" in report
    assert f"| {SYNTH_PERSONS:,} | — | — |" in report  # step 1: everyone in person
    assert f"- Cohort: {cohort.num_rows:,} persons" in report
    assert "| era_persistence_days |" in report
    attrition_csv = pacsv.read_csv(tmp_path / "attrition.csv")
    assert attrition_csv["persons"].to_pylist()[0] == SYNTH_PERSONS
    assert attrition_csv["persons"].to_pylist()[-1] == cohort.num_rows
    png = (tmp_path / "attrition.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000

    assert "persons remaining" in result.stdout  # the attrition table is printed
    assert f"{cohort.num_rows:,}" in result.stdout
    assert f"wrote {out}" in result.stdout
    assert "Not a medical device" in result.stdout
    for stage in ("checking tables", "running the phenotype", "writing the report"):
        assert stage in result.stderr  # the stage display


def test_csv_output_and_explicit_feature_and_report_paths(
    synthetic_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cohort.csv"
    features = tmp_path / "f" / "features.csv"
    report = tmp_path / "r"
    _run_ok(str(synthetic_folder), out, "--features", str(features), "--report", str(report))
    cohort = pacsv.read_csv(out)
    assert cohort.column_names == COHORT_COLUMNS
    assert cohort.num_rows == pacsv.read_csv(features).num_rows
    assert (report / "attrition.md").exists() and (report / "attrition.png").exists()
    assert not (tmp_path / "attrition.md").exists()


def test_a_postgres_url_gives_the_same_cohort_as_the_parquet_folder(
    synthetic_folder: Path, tmp_path: Path, pg_schema: str
) -> None:
    load_parquet_folder_into_postgres(synthetic_folder, PG_DATABASE_URL, pg_schema)
    duck_out = tmp_path / "duck" / "cohort.parquet"
    pg_out = tmp_path / "pg" / "cohort.parquet"
    _run_ok(str(synthetic_folder), duck_out)
    result = _run_ok(f"{PG_DATABASE_URL}?schema={pg_schema}", pg_out)
    assert f"schema {pg_schema}" in result.stdout
    assert pq.read_table(pg_out).equals(pq.read_table(duck_out))
    assert pq.read_table(pg_out.with_name("cohort_features.parquet")).equals(
        pq.read_table(duck_out.with_name("cohort_features.parquet"))
    )


def test_a_csv_folder_and_a_duckdb_file_give_the_same_cohort_as_parquet(
    synthetic_folder: Path, tmp_path: Path
) -> None:
    """Same data as CSV (types inferred) and as a DuckDB database file: the same three files."""
    import duckdb

    csv_folder = tmp_path / "csv"
    csv_folder.mkdir()
    db_path = tmp_path / "omop.duckdb"
    con = duckdb.connect(str(db_path))
    try:
        for part in sorted(synthetic_folder.glob("*.parquet")):
            table = pq.read_table(part)
            pacsv.write_csv(table, csv_folder / f"{part.stem}.csv")
            con.register("incoming", table)
            con.execute(f'CREATE TABLE "{part.stem}" AS SELECT * FROM incoming')  # noqa: S608
            con.unregister("incoming")
    finally:
        con.close()
    outs = {}
    for label, omop in (("parquet", synthetic_folder), ("csv", csv_folder), ("db", db_path)):
        outs[label] = tmp_path / label / "cohort.parquet"
        _run_ok(str(omop), outs[label])
    for label in ("csv", "db"):
        for name in ("cohort.parquet", "cohort_features.parquet"):
            got = pq.read_table(outs[label].with_name(name))
            assert got.equals(pq.read_table(outs["parquet"].with_name(name))), (label, name)
        attrition = (outs[label].parent / "attrition.csv").read_text()
        assert attrition == (outs["parquet"].parent / "attrition.csv").read_text()


def test_an_output_path_that_is_a_folder_fails_cleanly_after_the_run(
    synthetic_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cohort.parquet"
    out.mkdir()
    _assert_clean_failure(
        _cohort("--omop", str(synthetic_folder), "--out", str(out)), f"cannot write {out}"
    )


# --- the data cannot be used ---------------------------------------------------------------------


def _folder_with(tmp_path: Path, **replace: pa.Table | None) -> Path:
    tables: dict[str, Any] = tiny_omop()
    for name, table in replace.items():
        if table is None:
            del tables[name]
        else:
            tables[name] = table
    return write_parquet_folder(tmp_path / "omop", tables)


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    folder = _folder_with(tmp_path, measurement=None, procedure_occurrence=None)
    _assert_clean_failure(
        _cohort("--omop", str(folder), "--out", str(tmp_path / "c.parquet")),
        f"the OMOP data in Parquet folder {folder} cannot be used: 2 problems",
        "the OMOP table measurement is missing",
        "the OMOP table procedure_occurrence is missing",
    )
    assert not (tmp_path / "c.parquet").exists()


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    drug = tiny_omop()["drug_exposure"].drop_columns(["days_supply"])
    folder = _folder_with(tmp_path, drug_exposure=drug)
    _assert_clean_failure(
        _cohort("--omop", str(folder), "--out", str(tmp_path / "c.parquet")),
        "cannot be used: 1 problem",
        "drug_exposure.days_supply: table drug_exposure has no column days_supply",
    )


def test_a_column_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    person = pa.table({"person_id": pa.array([1, 2], pa.int64()), "year_of_birth": ["70", "85"]})
    folder = _folder_with(tmp_path, person=person)
    _assert_clean_failure(
        _cohort("--omop", str(folder), "--out", str(tmp_path / "c.parquet")),
        "person.year_of_birth is string; expected an integer column",
    )


def test_an_empty_person_table_is_reported(tmp_path: Path) -> None:
    person = tiny_omop()["person"].slice(0, 0)
    folder = _folder_with(tmp_path, person=person)
    _assert_clean_failure(
        _cohort("--omop", str(folder), "--out", str(tmp_path / "c.parquet")),
        "person: the person table is empty: there is nobody to search",
    )


def test_an_empty_postgres_person_table_is_reported(tmp_path: Path, pg_schema: str) -> None:
    person = tiny_omop()["person"].slice(0, 0)
    folder = _folder_with(tmp_path, person=person)
    load_parquet_folder_into_postgres(folder, PG_DATABASE_URL, pg_schema)
    _assert_clean_failure(
        _cohort(
            "--omop", PG_DATABASE_URL, "--schema", pg_schema, "--out", str(tmp_path / "c.parquet")
        ),
        "the person table is empty",
        f"schema {pg_schema}",
    )


def test_a_missing_postgres_column_is_named(tmp_path: Path, pg_schema: str) -> None:
    concept = tiny_omop()["concept"].drop_columns(["concept_code"])
    folder = _folder_with(tmp_path, concept=concept)
    load_parquet_folder_into_postgres(folder, PG_DATABASE_URL, pg_schema)
    _assert_clean_failure(
        _cohort(
            "--omop", f"{PG_DATABASE_URL}?schema={pg_schema}", "--out", str(tmp_path / "c.csv")
        ),
        "concept.concept_code: table concept has no column concept_code",
    )


def test_an_empty_duckdb_database_says_which_tables_it_looked_for(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    _assert_clean_failure(
        _cohort("--omop", str(path), "--out", str(tmp_path / "c.parquet")),
        f"--omop: DuckDB file {path} holds none of the OMOP tables person, observation_period",
    )


# --- the command line itself is wrong ------------------------------------------------------------


def test_an_unknown_url_lists_the_accepted_forms(tmp_path: Path) -> None:
    _assert_clean_failure(
        _cohort("--omop", "mysql://localhost/omop", "--out", str(tmp_path / "c.parquet")),
        "--omop: mysql://localhost/omop: not an accepted form",
        "spark-local",
    )


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    _assert_clean_failure(
        _cohort("--omop", str(tmp_path / "nope"), "--out", str(tmp_path / "c.parquet")),
        f"{tmp_path / 'nope'}: no such file or folder",
    )


def test_an_unreachable_postgres_server_is_named(tmp_path: Path) -> None:
    _assert_clean_failure(
        _cohort(
            "--omop", "postgresql://postgres@127.0.0.1:1/test", "--out", str(tmp_path / "c.csv")
        ),
        "cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1:1/test",
    )


def test_spark_without_omop_path_asks_for_it(tmp_path: Path) -> None:
    _assert_clean_failure(
        _cohort("--omop", "spark-local", "--out", str(tmp_path / "c.parquet")),
        "--omop-path: --omop spark-local: Spark reads Parquet",
    )


def test_an_output_under_a_file_is_unwritable(tiny_folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    _assert_clean_failure(
        _cohort("--omop", str(tiny_folder), "--out", str(blocker / "c.parquet")),
        f"--out: cannot create the folder {blocker}",
    )


def test_a_report_folder_under_a_file_is_unwritable(tiny_folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    _assert_clean_failure(
        _cohort(
            "--omop",
            str(tiny_folder),
            "--out",
            str(tmp_path / "c.parquet"),
            "--report",
            str(blocker / "r"),
        ),
        "--report: cannot create the folder",
    )


@pytest.mark.parametrize(
    ("option", "value"), [("--out", "cohort.txt"), ("--features", "features.json")]
)
def test_an_output_of_another_format_is_refused(
    tiny_folder: Path, tmp_path: Path, option: str, value: str
) -> None:
    args = ["--omop", str(tiny_folder), "--out", str(tmp_path / "c.parquet")]
    args += [option, str(tmp_path / value)]
    _assert_clean_failure(_cohort(*args), f"{option}: ", "expected a .parquet or .csv file name")


def test_the_features_cannot_overwrite_the_cohort(tiny_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.parquet"
    _assert_clean_failure(
        _cohort("--omop", str(tiny_folder), "--out", str(out), "--features", str(out)),
        f"--features: {out} is also the --out file",
    )
