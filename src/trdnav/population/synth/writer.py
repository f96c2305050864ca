"""Write synthetic OMOP CDM v5.4 tables as Parquet, chunk by chunk.

:func:`generate_omop` draws persons ``1..N`` (each from a seed derived from ``(seed, person_id)``,
so the chunk size never changes the data), records their true events as OMOP rows with recording
noise (:class:`~trdnav.population.synth.settings.NoiseRates`), and appends each chunk of persons as
a row group to one Parquet file per table through :class:`pyarrow.parquet.ParquetWriter`. Memory
is bounded by one chunk. Beside the tables: ``ground_truth.parquet`` (the phenotype's rules applied
to the true events, see :mod:`~trdnav.population.synth.truth`) and ``manifest.json``.
"""

from __future__ import annotations

import json
import random
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trdnav import __version__
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.population.synth.journeys import Person, Simulator
from trdnav.population.synth.settings import DEFAULT_SETTINGS, GENERATOR_VERSION, SynthSettings
from trdnav.population.synth.truth import TruthRow, TruthRules
from trdnav.population.synth.vocabulary import Vocabulary, build_vocabulary_index

GENDER_CONCEPT = {True: 8532, False: 8507}
"""OMOP's standard Gender concepts FEMALE and MALE (the only Athena ids used)."""
CLAIM_TYPE_CONCEPT = 32810
"""OMOP's Type Concept "Claim", for the *_type_concept_id columns."""

_DATE = pa.date32()
SCHEMAS: dict[str, pa.Schema] = {
    "person": pa.schema(
        [
            ("person_id", pa.int64()),
            ("gender_concept_id", pa.int64()),
            ("year_of_birth", pa.int32()),
            ("month_of_birth", pa.int32()),
            ("day_of_birth", pa.int32()),
            ("race_concept_id", pa.int64()),
            ("ethnicity_concept_id", pa.int64()),
            ("gender_source_value", pa.string()),
        ]
    ),
    "observation_period": pa.schema(
        [
            ("observation_period_id", pa.int64()),
            ("person_id", pa.int64()),
            ("observation_period_start_date", _DATE),
            ("observation_period_end_date", _DATE),
            ("period_type_concept_id", pa.int64()),
        ]
    ),
    "condition_occurrence": pa.schema(
        [
            ("condition_occurrence_id", pa.int64()),
            ("person_id", pa.int64()),
            ("condition_concept_id", pa.int64()),
            ("condition_start_date", _DATE),
            ("condition_type_concept_id", pa.int64()),
            ("condition_source_value", pa.string()),
            ("condition_source_concept_id", pa.int64()),
        ]
    ),
    "drug_exposure": pa.schema(
        [
            ("drug_exposure_id", pa.int64()),
            ("person_id", pa.int64()),
            ("drug_concept_id", pa.int64()),
            ("drug_exposure_start_date", _DATE),
            ("drug_exposure_end_date", _DATE),
            ("drug_type_concept_id", pa.int64()),
            ("quantity", pa.float64()),
            ("days_supply", pa.int32()),
        ]
    ),
    "procedure_occurrence": pa.schema(
        [
            ("procedure_occurrence_id", pa.int64()),
            ("person_id", pa.int64()),
            ("procedure_concept_id", pa.int64()),
            ("procedure_date", _DATE),
            ("procedure_type_concept_id", pa.int64()),
            ("procedure_source_value", pa.string()),
            ("procedure_source_concept_id", pa.int64()),
        ]
    ),
    "measurement": pa.schema(
        [
            ("measurement_id", pa.int64()),
            ("person_id", pa.int64()),
            ("measurement_concept_id", pa.int64()),
            ("measurement_date", _DATE),
            ("measurement_type_concept_id", pa.int64()),
            ("value_as_number", pa.float64()),
            ("measurement_source_value", pa.string()),
        ]
    ),
    "ground_truth": pa.schema(
        [
            ("person_id", pa.int64()),
            ("has_mdd", pa.bool_()),
            ("excluded", pa.string()),
            ("is_trd", pa.bool_()),
            ("index_date", _DATE),
            ("episode_start", _DATE),
            ("true_failed_adequate_trials", pa.int32()),
            ("age_at_index", pa.int32()),
        ]
    ),
}
"""Event tables (CDM v5.4 column names and types) and the ground truth, written per chunk."""

VOCABULARY_TABLES = ("concept", "concept_ancestor", "drug_strength")
EVENT_TABLES = tuple(SCHEMAS)
ALL_FILES = (*(f"{t}.parquet" for t in (*EVENT_TABLES, *VOCABULARY_TABLES)), "manifest.json")

_NULL = -(1 << 31)
_TYPECODE = {"int64": "q", "int32": "i", "date32[day]": "i", "double": "d", "bool": "b"}


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    persons: int
    seed: int
    chunk_size: int
    rows: dict[str, int]
    mdd_persons: int
    excluded_persons: int
    trd_persons: int
    seconds: float
    generator_version: str = GENERATOR_VERSION


class _Buffer:
    """Columns of one table for one chunk, as compact arrays (strings as lists)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.cols: list[Any] = []
        for f in schema:
            typ = str(f.type)
            self.cols.append([] if typ == "string" else array(_TYPECODE[typ]))
        self.add = [c.append for c in self.cols]

    def __len__(self) -> int:
        return len(self.cols[0])

    def table(self) -> pa.Table:
        arrays = []
        for f, col in zip(self.schema, self.cols, strict=True):
            if isinstance(col, list):
                arrays.append(pa.array(col, f.type))
                continue
            values = (
                np.frombuffer(col, dtype=col.typecode) if len(col) else np.array([], col.typecode)
            )
            if f.type == pa.bool_():
                arrays.append(pa.array(values.astype(bool)))
                continue
            if col.typecode == "d":
                mask = np.isnan(values)
            else:
                mask = values == _NULL
            arr = pa.array(values, mask=mask if mask.any() else None)
            arrays.append(arr.cast(f.type) if arr.type != f.type else arr)
        return pa.Table.from_arrays(arrays, schema=self.schema)


@dataclass
class _Ids:
    next: dict[str, int] = field(default_factory=dict)

    def take(self, table: str) -> int:
        n = self.next.get(table, 0) + 1
        self.next[table] = n
        return n


class _Recorder:
    """Turns true events into OMOP rows with recording noise."""

    def __init__(self, voc: Vocabulary, settings: SynthSettings, seed: int) -> None:
        self.voc, self.noise, self.seed = voc, settings.noise, seed
        self.rng = random.Random()  # noqa: S311 - simulation, not cryptography
        self.ids = _Ids()

    def record(self, p: Person, truth: TruthRow, buf: dict[str, _Buffer]) -> None:
        rng, noise, voc, ids, pid = self.rng, self.noise, self.voc, self.ids, p.person_id
        rng.seed(f"trdnav-synth-noise/{self.seed}/{pid}")
        b = p.birth
        sex = "F" if p.female else "M"
        _put(buf["person"], pid, GENDER_CONCEPT[p.female], b.year, b.month, b.day, 0, 0, sex)
        _put(
            buf["observation_period"],
            ids.take("op"),
            pid,
            p.obs_start,
            p.obs_end,
            CLAIM_TYPE_CONCEPT,
        )
        c = buf["condition_occurrence"].add
        for d, code in sorted(p.dx):
            std, src = voc.icd10_snomed[code], voc.icd10[code]
            u = rng.random()
            if u < noise.condition_source_value_only:
                std = src = 0
            elif u < noise.condition_source_value_only + noise.condition_no_source_concept:
                src = 0
            text = code.replace(".", "") if rng.random() < noise.icd_without_dot else code
            c[0](ids.take("co"))
            c[1](pid)
            c[2](std)
            c[3](d)
            c[4](CLAIM_TYPE_CONCEPT)
            c[5](text)
            c[6](src)
        x = buf["drug_exposure"].add
        for f in sorted(p.fills, key=lambda f: (f.day, f.product.concept_id)):
            ds: int = f.days_supply
            qty = float(f.tablets * ds)
            end = f.day + ds - 1 if rng.random() < noise.end_date_present else _NULL
            if rng.random() < noise.missing_days_supply:
                ds, end = _NULL, _NULL
            if rng.random() < noise.missing_quantity:
                qty = float("nan")
            copies = 2 if rng.random() < noise.duplicate_drug_row else 1
            for _ in range(copies):
                x[0](ids.take("de"))
                x[1](pid)
                x[2](f.product.concept_id)
                x[3](f.day)
                x[4](end)
                x[5](CLAIM_TYPE_CONCEPT)
                x[6](qty)
                x[7](ds)
        pr = buf["procedure_occurrence"]
        for d, code in sorted(p.procedures):
            cid = voc.procedure[code]
            _put(pr, ids.take("po"), pid, cid, d, CLAIM_TYPE_CONCEPT, code, cid)
        m = buf["measurement"]
        for d, code, value in sorted(p.measurements):
            _put(m, ids.take("me"), pid, voc.loinc[code], d, CLAIM_TYPE_CONCEPT, value, code)
        _put(
            buf["ground_truth"],
            pid,
            truth.has_mdd,
            truth.excluded,
            truth.is_trd,
            _NULL if truth.index_date is None else truth.index_date,
            _NULL if truth.episode_start is None else truth.episode_start,
            truth.true_failed_adequate_trials,
            _NULL if truth.age_at_index is None else truth.age_at_index,
        )


def _put(buffer: _Buffer, *values: Any) -> None:
    for add, value in zip(buffer.add, values, strict=True):
        add(value)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError([Problem("--out", "not_a_directory", f"{out_dir} is not a directory")])
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(
            [
                Problem(
                    "--out",
                    "not_empty",
                    f"{out_dir} exists and is not empty; choose a new folder or pass --overwrite",
                )
            ]
        )


def generate_omop(
    out_dir: Path,
    persons: int,
    seed: int,
    chunk_size: int = 50_000,
    progress: Callable[[int], None] | None = None,
    *,
    overwrite: bool = False,
    kb: Knowledge | None = None,
    settings: SynthSettings = DEFAULT_SETTINGS,
) -> SynthSummary:
    """Write ``persons`` synthetic persons' OMOP tables and ground truth to ``out_dir``.

    ``progress`` is called after each chunk with the number of persons written so far. The data
    depend only on ``persons``, ``seed``, the knowledge base and ``settings`` (not the chunk size).
    With ``overwrite`` the generator's own files in ``out_dir`` are replaced; other files stay.
    """
    problems = []
    if persons < 1:
        problems.append(
            Problem("--persons", "too_small", f"persons must be at least 1, got {persons}")
        )
    if chunk_size < 1:
        problems.append(
            Problem("--chunk-size", "too_small", f"chunk size must be at least 1, got {chunk_size}")
        )
    if problems:
        raise InputError(problems)
    _check_target(out_dir, overwrite)
    started = time.perf_counter()
    kb = kb or default_knowledge()
    voc = build_vocabulary_index(kb)
    sim = Simulator(kb, voc, settings)
    rules = TruthRules(kb, voc)
    recorder = _Recorder(voc, settings, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ALL_FILES:
        (out_dir / name).unlink(missing_ok=True)
    rows = {name: 0 for name in (*EVENT_TABLES, *VOCABULARY_TABLES)}
    for name in VOCABULARY_TABLES:
        pq.write_table(voc.tables[name], out_dir / f"{name}.parquet")
        rows[name] = voc.tables[name].num_rows
    writers = {
        name: pq.ParquetWriter(out_dir / f"{name}.parquet", schema)
        for name, schema in SCHEMAS.items()
    }
    mdd = excluded = trd = 0
    try:
        for first in range(1, persons + 1, chunk_size):
            last = min(persons, first + chunk_size - 1)
            buf = {name: _Buffer(schema) for name, schema in SCHEMAS.items()}
            for pid in range(first, last + 1):
                person = sim.person(seed, pid)
                truth = rules.truth(person)
                mdd += truth.has_mdd
                excluded += truth.excluded is not None
                trd += truth.is_trd
                recorder.record(person, truth, buf)
            for name, b in buf.items():
                writers[name].write_table(b.table())
                rows[name] += len(b)
            del buf
            if progress is not None:
                progress(last)
    finally:
        for w in writers.values():
            w.close()
    seconds = time.perf_counter() - started
    summary = SynthSummary(
        out_dir, persons, seed, chunk_size, rows, mdd, excluded, trd, round(seconds, 3)
    )
    manifest = {
        "generator": "trdnav synth omop",
        "generator_version": GENERATOR_VERSION,
        "trdnav_version": __version__,
        "kb_version": kb.kb_version,
        "persons": persons,
        "seed": seed,
        "chunk_size": chunk_size,
        "rows": rows,
        "truth": {"mdd_persons": mdd, "excluded_persons": excluded, "trd_persons": trd},
        "settings": json.loads(json.dumps(asdict(settings), default=str)),
        "note": "Synthetic data: no real person. Concept ids are in OMOP's local range.",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return summary
