"""generate_omop and `trdnav synth omop`: files, OMOP types, determinism, noise, ground truth."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from trdnav.cli import app
from trdnav.errors import InputError
from trdnav.knowledge.load import Knowledge
from trdnav.population.schema import OMOP_TABLES, REQUIRED, check_tables
from trdnav.population.synth import DEFAULT_SETTINGS, generate_omop
from trdnav.population.synth.writer import ALL_FILES, SCHEMAS

PERSONS = 3000
TABLES = (*OMOP_TABLES, "ground_truth")


@pytest.fixture(scope="module")
def omop(tmp_path_factory: pytest.TempPathFactory, kb: Knowledge) -> Path:
    out = tmp_path_factory.mktemp("omop") / "data"
    generate_omop(out, PERSONS, 7, chunk_size=1000, kb=kb)
    return out


@pytest.fixture(scope="module")
def con(omop: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for t in TABLES:
        c.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{omop / t}.parquet')")  # noqa: S608
    return c


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _digest(folder: Path) -> dict[str, str]:
    """A hash of each table's schema and values as read back (not of the file layout)."""
    out = {}
    for t in TABLES:
        table = pq.read_table(folder / f"{t}.parquet")
        h = hashlib.sha256(str(table.schema.remove_metadata()).encode())
        for column in table.itercolumns():
            h.update(repr(column.to_pylist()).encode())
        out[t] = h.hexdigest()
    return out


def test_it_writes_one_file_per_table_and_a_manifest(omop: Path) -> None:
    assert sorted(p.name for p in omop.iterdir()) == sorted(ALL_FILES)
    manifest = json.loads((omop / "manifest.json").read_text())
    assert (manifest["persons"], manifest["seed"]) == (PERSONS, 7)
    for t in TABLES:
        assert manifest["rows"][t] == pq.ParquetFile(omop / f"{t}.parquet").metadata.num_rows
    assert pq.ParquetFile(omop / "drug_exposure.parquet").metadata.num_row_groups == 3


def test_columns_have_the_cdm_types(omop: Path) -> None:
    for name, schema in SCHEMAS.items():
        assert pq.read_schema(omop / f"{name}.parquet").remove_metadata() == schema, name
    person = pq.read_schema(omop / "person.parquet")
    assert person.field("person_id").type == pa.int64()
    drug = pq.read_schema(omop / "drug_exposure.parquet")
    assert drug.field("drug_exposure_start_date").type == pa.date32()
    assert drug.field("quantity").type == pa.float64()


def test_the_phenotype_contract_accepts_the_tables(omop: Path) -> None:
    c = ibis.duckdb.connect()
    tables = {t: c.read_parquet(omop / f"{t}.parquet", table_name=t) for t in TABLES}
    assert check_tables(tables) == []
    assert set(REQUIRED) <= set(tables)


def test_the_same_seed_gives_the_same_data_whatever_the_chunk_size(
    omop: Path, tmp_path: Path, kb: Knowledge
) -> None:
    generate_omop(tmp_path / "one_chunk", PERSONS, 7, chunk_size=PERSONS, kb=kb)
    generate_omop(tmp_path / "odd_chunks", PERSONS, 7, chunk_size=777, kb=kb)
    reference = _digest(omop)
    assert _digest(tmp_path / "one_chunk") == reference
    assert _digest(tmp_path / "odd_chunks") == reference


def test_worker_processes_give_the_same_data(tmp_path: Path, kb: Knowledge) -> None:
    generate_omop(tmp_path / "workers", 400, 7, chunk_size=150, workers=2)
    generate_omop(tmp_path / "here", 400, 7, chunk_size=400, workers=1, kb=kb)
    assert _digest(tmp_path / "workers") == _digest(tmp_path / "here")


def test_another_seed_gives_other_data(omop: Path, tmp_path: Path, kb: Knowledge) -> None:
    generate_omop(tmp_path / "s8", PERSONS, 8, chunk_size=1000, kb=kb)
    a, b = _digest(omop), _digest(tmp_path / "s8")
    assert a["drug_exposure"] != b["drug_exposure"]
    assert a["concept"] == b["concept"]  # the vocabulary does not depend on the seed


def test_a_smaller_population_is_a_prefix_of_a_larger_one(
    omop: Path, tmp_path: Path, kb: Knowledge
) -> None:
    generate_omop(tmp_path / "small", 500, 7, chunk_size=200, kb=kb)
    small = pq.read_table(tmp_path / "small" / "condition_occurrence.parquet")
    big = pq.read_table(omop / "condition_occurrence.parquet").slice(0, small.num_rows)
    assert small.equals(big)


def test_every_event_lies_in_the_persons_observation_period(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for table, column in (
        ("condition_occurrence", "condition_start_date"),
        ("drug_exposure", "drug_exposure_start_date"),
        ("procedure_occurrence", "procedure_date"),
        ("measurement", "measurement_date"),
    ):
        outside = _one(
            con,
            f"SELECT count(*) FROM {table} e JOIN observation_period o USING (person_id) "  # noqa: S608
            f"WHERE e.{column} NOT BETWEEN o.observation_period_start_date "
            "AND o.observation_period_end_date",
        )
        assert outside == 0, table


def test_every_concept_id_in_the_events_is_in_the_vocabulary(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for table, column in (
        ("condition_occurrence", "condition_concept_id"),
        ("condition_occurrence", "condition_source_concept_id"),
        ("drug_exposure", "drug_concept_id"),
        ("procedure_occurrence", "procedure_concept_id"),
        ("measurement", "measurement_concept_id"),
    ):
        missing = _one(
            con,
            f"SELECT count(*) FROM {table} WHERE {column} <> 0 "  # noqa: S608
            f"AND {column} NOT IN (SELECT concept_id FROM concept)",
        )
        assert missing == 0, (table, column)


def _rate(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    value = _one(con, sql)
    assert isinstance(value, float)
    return value


def test_recording_noise_is_present_at_about_the_stated_rates(
    con: duckdb.DuckDBPyConnection,
) -> None:
    noise = DEFAULT_SETTINGS.noise
    n_drug = _one(con, "SELECT count(*) FROM drug_exposure")
    assert isinstance(n_drug, int) and n_drug > 20_000
    tol = 0.006
    no_ds = _rate(con, "SELECT avg((days_supply IS NULL)::int)::double FROM drug_exposure")
    assert abs(no_ds - noise.missing_days_supply) < tol
    no_qty = _rate(con, "SELECT avg((quantity IS NULL)::int)::double FROM drug_exposure")
    assert abs(no_qty - noise.missing_quantity) < tol
    with_end = _rate(
        con, "SELECT avg((drug_exposure_end_date IS NOT NULL)::int)::double FROM drug_exposure"
    )
    assert abs(with_end - noise.end_date_present * (1 - noise.missing_days_supply)) < 2 * tol
    assert (
        _one(
            con,
            "SELECT count(*) FROM drug_exposure WHERE days_supply IS NULL "
            "AND drug_exposure_end_date IS NOT NULL",
        )
        == 0
    )
    dup = _rate(
        con,
        "SELECT (count(*) - count(DISTINCT (person_id, drug_concept_id, "
        "drug_exposure_start_date, quantity, days_supply)))::double / count(*) "
        "FROM drug_exposure",
    )
    assert abs(dup - noise.duplicate_drug_row / (1 + noise.duplicate_drug_row)) < tol
    text_only = _rate(
        con,
        "SELECT avg((condition_concept_id = 0 AND condition_source_concept_id = 0)::int)::double "
        "FROM condition_occurrence",
    )
    assert abs(text_only - noise.condition_source_value_only) < 0.02
    undotted = _rate(
        con,
        "SELECT avg((length(condition_source_value) > 3 AND "
        "strpos(condition_source_value, '.') = 0)::int)::double FROM condition_occurrence",
    )
    assert 0.03 < undotted < noise.icd_without_dot + 0.02
    overlapping = _one(
        con,
        "SELECT count(*) FROM (SELECT drug_exposure_start_date + days_supply - 1 AS e, "
        "lead(drug_exposure_start_date) OVER (PARTITION BY person_id, drug_concept_id "
        "ORDER BY drug_exposure_start_date) AS nxt FROM drug_exposure "
        "WHERE days_supply IS NOT NULL) WHERE nxt <= e AND nxt IS NOT NULL",
    )
    assert isinstance(overlapping, int) and overlapping > 100  # early refills


def test_daily_doses_follow_from_quantity_strength_and_days_supply(
    con: duckdb.DuckDBPyConnection, kb: Knowledge
) -> None:
    rows = con.execute(
        "SELECT c.concept_name, d.quantity * s.amount_value / d.days_supply AS mg "
        "FROM drug_exposure d JOIN drug_strength s ON s.drug_concept_id = d.drug_concept_id "
        "JOIN concept c ON c.concept_id = s.ingredient_concept_id "
        "WHERE d.quantity IS NOT NULL AND d.days_supply IS NOT NULL AND c.concept_name = "
        "'sertraline' GROUP BY ALL"
    ).fetchall()
    doses = {mg for _, mg in rows}
    dose = kb.drugs["sertraline"].antidepressant_dose
    assert dose is not None
    assert dose.min_adequate_mg_per_day in doses
    assert min(doses) < dose.min_adequate_mg_per_day  # titration and sub-therapeutic trials
    assert max(doses) <= dose.usual_max_mg_per_day


def test_the_mix_has_mdd_exclusions_adolescents_and_trd(con: duckdb.DuckDBPyConnection) -> None:
    mix = DEFAULT_SETTINGS.mix
    mdd = _rate(con, "SELECT avg(has_mdd::int)::double FROM ground_truth")
    assert abs(mdd - mix.mdd) < 0.04
    assert _one(con, "SELECT count(*) FROM ground_truth WHERE has_mdd AND excluded IS NOT NULL")
    trd = _one(con, "SELECT count(*) FROM ground_truth WHERE is_trd")
    assert isinstance(trd, int) and 0.05 * PERSONS < trd < 0.3 * PERSONS
    assert _one(
        con,
        "SELECT count(*) FROM procedure_occurrence WHERE procedure_source_value "
        "IN ('90870', '90867', '90868', 'G2082', 'G2083')",
    )
    esketamine_drug = _one(
        con,
        "SELECT count(*) FROM drug_exposure d JOIN concept c ON c.concept_id = d.drug_concept_id "
        "WHERE c.concept_name LIKE 'esketamine %' AND d.days_supply = 1",
    )
    assert esketamine_drug
    recurrent = _one(
        con,
        "SELECT count(DISTINCT person_id) FROM condition_occurrence "
        "WHERE condition_source_value LIKE 'F33%' AND condition_source_value NOT LIKE 'F338%' "
        "AND condition_source_value NOT LIKE 'F33.8%'",
    )
    assert recurrent
    young = _one(
        con,
        "SELECT count(*) FROM ground_truth g JOIN person p USING (person_id) "
        "WHERE g.has_mdd AND year(g.episode_start) - p.year_of_birth < 18",
    )
    assert young


def test_ground_truth_trd_persons_are_adult_unexcluded_with_two_failed_trials(
    con: duckdb.DuckDBPyConnection, kb: Knowledge
) -> None:
    adult = kb.population.parameters.min_age_at_index.value
    failed = kb.population.parameters.min_failed_trials.value
    rows = con.execute(
        "SELECT g.*, p.year_of_birth, p.month_of_birth, p.day_of_birth, "
        "o.observation_period_start_date, o.observation_period_end_date "
        "FROM ground_truth g JOIN person p USING (person_id) "
        "JOIN observation_period o USING (person_id) WHERE g.is_trd"
    ).fetchall()
    cols = [d[0] for d in con.description or ()]
    assert rows
    for raw in rows:
        r = dict(zip(cols, raw, strict=True))
        assert r["has_mdd"] and r["excluded"] is None
        index: date = r["index_date"]
        birth = date(r["year_of_birth"], r["month_of_birth"], r["day_of_birth"])
        age = index.year - birth.year - ((index.month, index.day) < (birth.month, birth.day))
        assert age == r["age_at_index"] and age >= adult
        assert r["episode_start"] <= index
        assert r["observation_period_start_date"] <= index <= r["observation_period_end_date"]
        assert r["true_failed_adequate_trials"] >= failed
    not_trd = _one(
        con,
        "SELECT count(*) FROM ground_truth WHERE NOT is_trd AND (index_date IS NOT NULL "
        "OR age_at_index IS NOT NULL)",
    )
    assert not_trd == 0
    assert _one(con, "SELECT count(*) FROM ground_truth WHERE is_trd AND NOT has_mdd") == 0


def test_it_refuses_bad_arguments(tmp_path: Path, kb: Knowledge) -> None:
    with pytest.raises(InputError, match="persons must be at least 1"):
        generate_omop(tmp_path / "a", 0, 1, kb=kb)
    with pytest.raises(InputError, match="chunk size must be at least 1"):
        generate_omop(tmp_path / "a", 10, 1, chunk_size=0, kb=kb)
    with pytest.raises(InputError, match="workers must be at least 1"):
        generate_omop(tmp_path / "a", 10, 1, workers=0, kb=kb)
    assert not (tmp_path / "a").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        generate_omop(busy, 10, 1, kb=kb)
    generate_omop(busy, 10, 1, overwrite=True, kb=kb)
    assert (busy / "notes.txt").read_text() == "mine"  # only the generator's files are replaced
    assert pq.read_metadata(busy / "person.parquet").num_rows == 10


runner = CliRunner()


def test_the_cli_writes_data_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "omop"
    r = runner.invoke(app, ["synth", "omop", "--persons", "200", "--seed", "3", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "drug_exposure" in r.stdout and "TRD in the ground truth" in r.stdout
    assert pq.read_metadata(out / "ground_truth.parquet").num_rows == 200


def test_the_cli_refuses_a_non_empty_folder_and_too_few_persons(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("")
    r = runner.invoke(app, ["synth", "omop", "--persons", "5", "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert "not empty" in r.output and "--overwrite" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["synth", "omop", "--persons", "0", "--out", str(tmp_path / "new")])
    assert r.exit_code == 2 and "persons must be at least 1" in r.output
    assert not (tmp_path / "new").exists()
