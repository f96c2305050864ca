"""open_omop: every accepted form opens the same OMOP tables (DuckDB over Parquet, CSV and a DuckDB
file; PostgreSQL; Spark), and every form it cannot open says what it expected.

PostgreSQL tests use a fresh schema in the ``test`` database (dropped after); a missing server
fails them unless ``TRDNAV_SKIP_POSTGRES=1``. Spark runs in local mode, one session per test run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdnav.errors import InputError
from trdnav.population.backends import (
    OMOP_TABLES,
    OmopSource,
    check_spark_master,
    load_arrow_into_postgres,
    load_parquet_folder_into_postgres,
    normalise_arrow,
    open_omop,
    parse_postgres_url,
    postgres_connect,
    to_arrow,
)
from trdnav.population.schema import check_tables

PG_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
SPARK_WARNINGS = [
    "ignore::ResourceWarning",
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
]
"""PySpark's own socket and pandas-conversion warnings (pytest turns warnings into errors)."""


def tiny_omop() -> dict[str, pa.Table]:
    """A minimal OMOP set: two persons, a row or two in every table the phenotype reads."""
    d = date
    return {
        "person": pa.table(
            {
                "person_id": pa.array([1, 2], pa.int64()),
                "year_of_birth": pa.array([1970, 1985], pa.int32()),
                "gender_concept_id": pa.array([8507, 8532], pa.int32()),
            }
        ),
        "observation_period": pa.table(
            {
                "person_id": pa.array([1, 2], pa.int64()),
                "observation_period_start_date": [d(2015, 1, 1), d(2016, 1, 1)],
                "observation_period_end_date": [d(2022, 12, 31), d(2021, 6, 30)],
            }
        ),
        "condition_occurrence": pa.table(
            {
                "person_id": pa.array([1, 2], pa.int64()),
                "condition_concept_id": pa.array([2000000101, 0], pa.int64()),
                "condition_start_date": [d(2018, 3, 1), d(2019, 5, 2)],
                "condition_source_concept_id": pa.array([None, 2000000102], pa.int64()),
                "condition_source_value": ["F33.1", "0296.2"],
            }
        ),
        "drug_exposure": pa.table(
            {
                "person_id": pa.array([1, 1], pa.int64()),
                "drug_concept_id": pa.array([2000001001, 2000001002], pa.int64()),
                "drug_exposure_start_date": [d(2018, 3, 10), d(2018, 6, 1)],
                "drug_exposure_end_date": pa.array([None, d(2018, 9, 1)], pa.date32()),
                "quantity": pa.array([30.0, None], pa.float64()),
                "days_supply": pa.array([30, None], pa.int32()),
            }
        ),
        "procedure_occurrence": pa.table(
            {
                "person_id": pa.array([2], pa.int64()),
                "procedure_concept_id": pa.array([2000002001], pa.int64()),
                "procedure_date": [d(2020, 1, 15)],
                "procedure_source_concept_id": pa.array([None], pa.int64()),
                "procedure_source_value": ["90870"],
            }
        ),
        "measurement": pa.table(
            {
                "person_id": pa.array([1], pa.int64()),
                "measurement_concept_id": pa.array([2000003001], pa.int64()),
                "measurement_date": [d(2018, 9, 1)],
                "value_as_number": pa.array([17.0], pa.float64()),
            }
        ),
        "concept": pa.table(
            {
                "concept_id": pa.array([2000000101, 2000001001, 2000003001], pa.int64()),
                "concept_name": ["Recurrent depression", "sertraline 50 MG Oral Tablet", "PHQ-9"],
                "domain_id": ["Condition", "Drug", "Measurement"],
                "vocabulary_id": ["ICD10CM", "RxNorm", "LOINC"],
                "concept_class_id": [
                    "4-char billing code",
                    "Clinical Drug",
                    "Clinical Observation",
                ],
                "standard_concept": [None, "S", "S"],
                "concept_code": ["F33.1", "0312938", "44261-6"],
            }
        ),
        "concept_ancestor": pa.table(
            {
                "ancestor_concept_id": pa.array([2000001000], pa.int64()),
                "descendant_concept_id": pa.array([2000001001], pa.int64()),
            }
        ),
        "drug_strength": pa.table(
            {
                "drug_concept_id": pa.array([2000001001], pa.int64()),
                "ingredient_concept_id": pa.array([2000001000], pa.int64()),
                "amount_value": pa.array([50.0], pa.float64()),
                "amount_unit_concept_id": pa.array([8576], pa.int64()),
            }
        ),
    }


def write_parquet_folder(folder: Path, tables: dict[str, pa.Table]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


def sorted_rows(table: Any) -> list[dict[str, Any]]:
    """Rows of a (normalised) pyarrow table as dicts, in a backend-independent order."""
    rows = normalise_arrow(table).to_pylist()
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r.values()))


def assert_same_data(
    source: OmopSource, expected: dict[str, pa.Table], only: tuple[str, ...] | None = None
) -> None:
    """The same tables; and the same rows in each (or in the ``only`` ones)."""
    assert sorted(source.tables) == sorted(expected)
    for name, table in expected.items():
        if only is not None and name not in only:
            continue
        got = to_arrow(source.tables[name])
        assert got.column_names == table.column_names, name
        assert sorted_rows(got) == sorted_rows(table), name


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_available() -> None:
    if os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")


@pytest.fixture
def pg_schema(pg_available: None) -> Iterator[str]:
    """A fresh schema name in the test database; dropped (with its tables) after the test."""
    name = f"omop_test_{uuid.uuid4().hex[:10]}"
    yield name
    con = postgres_connect(parse_postgres_url(PG_DATABASE_URL))
    try:
        con.raw_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        con.disconnect()


@pytest.fixture
def spark(spark_session: Any) -> Any:
    """The test run's Spark session (tests/population/conftest.py); open_omop finds it running."""
    return spark_session


# --- DuckDB: Parquet -----------------------------------------------------------------------------


def test_a_parquet_folder_opens_every_omop_table_with_its_data(tmp_path: Path) -> None:
    tables = tiny_omop()
    folder = write_parquet_folder(tmp_path / "omop", tables)
    pq.write_table(pa.table({"person_id": [1], "is_trd": [True]}), folder / "ground_truth.parquet")
    with open_omop(str(folder)) as source:
        assert source.backend == "duckdb"
        assert "Parquet folder" in source.description
        assert_same_data(source, tables)  # ground_truth is not an OMOP table: left alone
        assert check_tables(source.tables) == []


def test_parquet_part_folders_and_upper_case_names_are_read(tmp_path: Path) -> None:
    tables = tiny_omop()
    folder = tmp_path / "omop"
    write_parquet_folder(folder, {k: v for k, v in tables.items() if k != "drug_exposure"})
    parts = folder / "drug_exposure"
    parts.mkdir()
    drug = tables["drug_exposure"]
    pq.write_table(drug.slice(0, 1), parts / "part-00000.parquet")
    pq.write_table(drug.slice(1, 1), parts / "part-00001.parquet")
    (folder / "person.parquet").unlink()
    upper = tables["person"].rename_columns([c.upper() for c in tables["person"].column_names])
    pq.write_table(upper, folder / "PERSON.parquet")
    with open_omop(str(folder)) as source:
        assert_same_data(source, tables)


def test_a_folder_without_omop_tables_says_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(InputError) as exc:
        open_omop(str(tmp_path))
    message = str(exc.value)
    assert str(tmp_path) in message
    assert "person.parquet" in message and "person.csv" in message


def test_an_unreadable_parquet_file_is_named(tmp_path: Path) -> None:
    folder = write_parquet_folder(tmp_path / "omop", tiny_omop())
    (folder / "measurement.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError) as exc:
        open_omop(str(folder))
    assert "measurement.parquet" in str(exc.value)
    assert exc.value.problems[0].code == "unreadable"


# --- DuckDB: CSV ---------------------------------------------------------------------------------


def _write_csv_folder(folder: Path, tables: dict[str, pa.Table]) -> Path:
    import pyarrow.csv as pacsv

    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pacsv.write_csv(table, folder / f"{name}.csv")
    return folder


def test_a_csv_folder_gives_dates_as_dates_and_codes_as_text(tmp_path: Path) -> None:
    tables = tiny_omop()
    folder = _write_csv_folder(tmp_path / "csv", tables)
    with open_omop(str(folder)) as source:
        assert "CSV folder" in source.description
        assert check_tables(source.tables) == []
        schema = source.tables["drug_exposure"].schema()
        assert schema["drug_exposure_start_date"].is_date()
        assert schema["drug_exposure_end_date"].is_date()  # one value missing: still a date
        concept = to_arrow(source.tables["concept"])
        assert "0312938" in concept["concept_code"].to_pylist()  # the leading zero kept
        assert_same_data(source, tables)


def test_an_all_empty_csv_date_column_comes_out_as_a_date(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "observation_period.csv").write_text(
        "person_id,observation_period_start_date,observation_period_end_date\n1,2020-01-01,\n"
    )
    with open_omop(str(folder)) as source:
        schema = source.tables["observation_period"].schema()
        assert schema["observation_period_end_date"].is_date()
        assert to_arrow(source.tables["observation_period"]).to_pylist() == [
            {
                "person_id": 1,
                "observation_period_start_date": date(2020, 1, 1),
                "observation_period_end_date": None,
            }
        ]


def test_a_csv_date_column_holding_text_is_reported_as_the_wrong_type(tmp_path: Path) -> None:
    tables = tiny_omop()
    folder = _write_csv_folder(tmp_path / "csv", tables)
    (folder / "measurement.csv").write_text(
        "person_id,measurement_concept_id,measurement_date,value_as_number\n"
        "1,2000003001,last spring,17\n"
    )
    with open_omop(str(folder)) as source:
        problems = check_tables(source.tables)
    assert [(p.loc, p.code) for p in problems] == [("measurement.measurement_date", "wrong_type")]


def test_a_csv_column_with_values_that_do_not_convert_stays_text(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "person.csv").write_text("person_id,year_of_birth\n1,1970\n2,unknown\n")
    with open_omop(str(folder)) as source:
        assert source.tables["person"].schema()["year_of_birth"].is_string()


# --- DuckDB: a database file ---------------------------------------------------------------------


def _write_duckdb_file(path: Path, tables: dict[str, pa.Table], schema: str | None = None) -> Path:
    con = duckdb.connect(str(path))
    try:
        if schema:
            con.execute(f'CREATE SCHEMA "{schema}"')
        prefix = f'"{schema}".' if schema else ""
        for name, table in tables.items():
            con.register("incoming", table)
            sql = f'CREATE TABLE {prefix}"{name.upper()}" AS SELECT * FROM incoming'  # noqa: S608
            con.execute(sql)
            con.unregister("incoming")
    finally:
        con.close()
    return path


def test_a_duckdb_file_opens_read_only_with_lower_case_names(tmp_path: Path) -> None:
    tables = tiny_omop()
    path = _write_duckdb_file(tmp_path / "omop.duckdb", tables)
    with open_omop(str(path)) as source:
        assert source.description == f"DuckDB file {path}"
        assert_same_data(source, tables)
        with pytest.raises(duckdb.Error):
            source.con.raw_sql("CREATE TABLE scratch (x INT)")  # read only


def test_a_duckdb_url_names_the_file(tmp_path: Path) -> None:
    path = _write_duckdb_file(tmp_path / "omop.duckdb", {"person": tiny_omop()["person"]})
    with open_omop(f"duckdb://{path}") as source:
        assert sorted(source.tables) == ["person"]


def test_a_duckdb_file_schema_is_taken_from_the_schema_option(tmp_path: Path) -> None:
    tables = tiny_omop()
    path = _write_duckdb_file(tmp_path / "omop.db", tables, schema="cdm")
    with open_omop(str(path), schema="cdm") as source:
        assert_same_data(source, tables)
    with pytest.raises(InputError) as exc:
        open_omop(str(path))  # the main schema holds nothing
    assert "holds none of the OMOP tables" in str(exc.value)


def test_a_file_that_is_not_a_duckdb_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "omop.duckdb"
    path.write_text("hello")
    with pytest.raises(InputError) as exc:
        open_omop(str(path))
    assert f"cannot open the DuckDB file {path}" in str(exc.value)


# --- forms that are not accepted -----------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://localhost/omop", "s3://bucket/omop", "sqlite:///x.db"])
def test_an_unknown_url_form_lists_the_accepted_forms(url: str) -> None:
    with pytest.raises(InputError) as exc:
        open_omop(url)
    message = str(exc.value)
    assert url in message
    for form in ("Parquet", "CSV", "DuckDB file", "postgresql://", "spark-local", "spark://"):
        assert form in message


def test_a_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError) as exc:
        open_omop(str(missing))
    assert f"{missing}: no such file or folder" in str(exc.value)


def test_a_file_of_another_kind_is_not_accepted(tmp_path: Path) -> None:
    path = tmp_path / "omop.xlsx"
    path.write_text("x")
    with pytest.raises(InputError) as exc:
        open_omop(str(path))
    assert exc.value.problems[0].code == "unknown_url"


@pytest.mark.parametrize("url", ["spark-local", "spark://127.0.0.1:7077"])
def test_spark_without_a_parquet_folder_asks_for_omop_path(url: str) -> None:
    with pytest.raises(InputError) as exc:
        open_omop(url)
    assert exc.value.problems[0].loc == "--omop-path"
    assert f"--omop {url}" in str(exc.value)


def test_a_spark_master_that_refuses_connections_fails_at_once() -> None:
    with pytest.raises(InputError) as exc:
        check_spark_master("spark://127.0.0.1:1")
    assert "cannot reach the Spark master spark://127.0.0.1:1" in str(exc.value)
    assert "refused" in str(exc.value).lower()
    with pytest.raises(InputError) as exc:
        check_spark_master("spark://no-port-here")
    assert "expected spark://host:port" in str(exc.value)


def test_a_spark_master_that_listens_passes_the_check() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_spark_master(f"spark://127.0.0.1:1,127.0.0.1:{port}")  # one of the HA masters


def test_spark_with_a_folder_without_parquet_says_so(tmp_path: Path) -> None:
    (tmp_path / "person.csv").write_text("person_id\n1\n")
    with pytest.raises(InputError) as exc:
        open_omop("spark-local", omop_path=tmp_path)
    assert "holds no OMOP Parquet tables" in str(exc.value)


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_postgres_urls_give_host_port_database_and_schema() -> None:
    t = parse_postgres_url("postgresql+psycopg://ann:s%40cret@db.example:6543/cdm?schema=omop")
    assert (t.host, t.port, t.user, t.password, t.database, t.schema) == (
        "db.example",
        6543,
        "ann",
        "s@cret",
        "cdm",
        "omop",
    )
    assert parse_postgres_url("postgresql://127.0.0.1/test").schema == "public"
    assert parse_postgres_url("postgresql://h/db?schema=a", schema="b").schema == "b"
    assert "s@cret" not in t.display  # the password is never shown


def test_an_unreachable_postgres_server_is_a_clear_error() -> None:
    with pytest.raises(InputError) as exc:
        open_omop("postgresql://postgres@127.0.0.1:1/test")
    message = str(exc.value)
    assert message.startswith("--omop: cannot connect to PostgreSQL at postgresql://postgres@")
    assert "127.0.0.1:1/test" in message


def test_a_parquet_folder_loaded_into_postgres_opens_with_the_same_data(
    tmp_path: Path, pg_schema: str
) -> None:
    tables = tiny_omop()
    folder = write_parquet_folder(tmp_path / "omop", tables)
    loaded = load_parquet_folder_into_postgres(folder, PG_DATABASE_URL, pg_schema)
    assert loaded == sorted(tables)
    with open_omop(f"{PG_DATABASE_URL}?schema={pg_schema}") as source:
        assert source.backend == "postgres"
        assert pg_schema in source.description
        assert check_tables(source.tables) == []
        assert_same_data(source, tables)
    with open_omop(PG_DATABASE_URL, schema=pg_schema) as source:  # --schema
        assert sorted(source.tables) == sorted(tables)


def test_postgres_copy_keeps_empty_strings_nulls_and_awkward_text(pg_schema: str) -> None:
    table = pa.table(
        {
            "concept_id": pa.array([1, 2, 3, 4], pa.int64()),
            "concept_name": ['say "hi", then\nleave', "", None, "naïve | ünïcode"],
        }
    )
    con = postgres_connect(parse_postgres_url(PG_DATABASE_URL))
    try:
        load_arrow_into_postgres(con, {"concept": table}, pg_schema)
        got = to_arrow(con.table("concept", database=pg_schema))
    finally:
        con.disconnect()
    assert sorted_rows(got) == sorted_rows(table)


def test_a_postgres_schema_without_omop_tables_says_so(pg_available: None) -> None:
    with pytest.raises(InputError) as exc:
        open_omop(f"{PG_DATABASE_URL}?schema=no_such_schema_here")
    assert "schema no_such_schema_here holds none of the OMOP tables" in str(exc.value)


# --- Spark ---------------------------------------------------------------------------------------


@pytest.mark.filterwarnings(*SPARK_WARNINGS)
def test_spark_local_reads_the_parquet_folder_with_the_same_data(
    tmp_path: Path, spark: Any
) -> None:
    tables = tiny_omop()
    folder = write_parquet_folder(tmp_path / "omop", tables)
    source = open_omop("spark-local", omop_path=folder)
    try:
        assert source.backend == "pyspark"
        assert check_tables(source.tables) == []  # every column with its type
        # a Spark job per table read: three cover nulls, dates, integers, floats and text
        assert_same_data(source, tables, only=("person", "drug_exposure", "concept"))
    finally:
        source.close()
    # the session the test run started is not stopped by close()
    assert spark.sparkContext._jsc is not None


# --- result normalisation ------------------------------------------------------------------------

INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16()]


@given(
    values=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=120)), max_size=20),
    int_type=st.sampled_from(INT_TYPES),
)
def test_normalised_tables_keep_every_value_in_one_type_per_kind(
    values: list[int | None], int_type: pa.DataType
) -> None:
    table = pa.table(
        {
            "i": pa.array(values, int_type),
            "f": pa.array([None if v is None else v / 4 for v in values], pa.float32()),
            "s": pa.array([None if v is None else str(v) for v in values], pa.large_string()),
        }
    )
    got = normalise_arrow(table)
    assert got.schema == pa.schema([("i", pa.int64()), ("f", pa.float64()), ("s", pa.string())])
    assert got["i"].to_pylist() == values
    assert got["f"].to_pylist() == [None if v is None else v / 4 for v in values]
    assert got["s"].to_pylist() == table["s"].to_pylist()


def test_omop_tables_are_the_required_and_optional_ones() -> None:
    assert set(OMOP_TABLES) == set(tiny_omop())


@pytest.mark.filterwarnings(*SPARK_WARNINGS)
def test_two_spark_sources_in_one_session_keep_their_own_data(tmp_path: Path, spark: Any) -> None:
    tables = tiny_omop()
    first = write_parquet_folder(tmp_path / "a", {"person": tables["person"]})
    second = write_parquet_folder(tmp_path / "b", {"person": tables["person"].slice(0, 1)})
    a = open_omop("spark-local", omop_path=first)
    b = open_omop("spark-local", omop_path=second)
    try:
        assert a.tables["person"].count().to_pyarrow().as_py() == 2
        assert b.tables["person"].count().to_pyarrow().as_py() == 1
    finally:
        a.close()
        b.close()
    with pytest.raises(InputError) as exc:  # another master while local[2] runs here
        open_omop("local[4]", omop_path=first)
    assert "a Spark session on local[2] is already running" in str(exc.value)
    views = {t.name for t in spark.catalog.listTables()}
    assert not any(v.startswith("omop_person_") for v in views)  # close() drops its views
