"""Write synthetic OMOP CDM v5.4 tables as Parquet, chunk by chunk.

:func:`generate_omop` draws persons ``1..N`` (each from a seed derived from ``(seed, person_id)``,
so the chunk size never changes the data), records their true events as OMOP rows with recording
noise (:class:`~trdnav.population.synth.settings.NoiseRates`), and appends each chunk of persons as
a row group to one Parquet file per table through :class:`pyarrow.parquet.ParquetWriter`. Memory
is bounded by one chunk. Beside the tables: ``ground_truth.parquet`` (the phenotype's rules applied
to the true events, see :mod:`~trdnav.population.synth.truth`) and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trdnav import __version__
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.population.synth.journeys import Person, Simulator
from trdnav.population.synth.settings import (
    DEFAULT_SETTINGS,
    GENERATOR_VERSION,
    NoiseRates,
    SynthSettings,
)
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

ROW_ID_TABLES = frozenset(
    {
        "observation_period",
        "condition_occurrence",
        "drug_exposure",
        "procedure_occurrence",
        "measurement",
    }
)
"""Tables whose first column is a row id, numbered 1.. over the whole run."""
VOCABULARY_TABLES = ("concept", "concept_ancestor", "drug_strength")
EVENT_TABLES = tuple(SCHEMAS)
ALL_FILES = (*(f"{t}.parquet" for t in (*EVENT_TABLES, *VOCABULARY_TABLES)), "manifest.json")

MAX_AUTO_WORKERS = 2
AUTO_WORKERS_FROM = 200_000
"""Persons from which worker processes pay for their start-up (a few seconds each)."""

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

    def __init__(self, schema: pa.Schema, row_id: bool) -> None:
        """``row_id``: the table's first column is a row id, numbered when the table is built."""
        self.schema = schema
        self.row_id = row_id
        fields = list(schema)[1:] if row_id else list(schema)
        self.fields = fields
        self.cols: list[Any] = []
        for f in fields:
            typ = str(f.type)
            self.cols.append([] if typ == "string" else array(_TYPECODE[typ]))
        self.add = [c.append for c in self.cols]

    def __len__(self) -> int:
        return len(self.cols[0])

    def table(self, first_id: int = 1) -> pa.Table:
        arrays = []
        if self.row_id:
            arrays.append(pa.array(np.arange(first_id, first_id + len(self)), pa.int64()))
        for f, col in zip(self.fields, self.cols, strict=True):
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


def _stream_key(seed: int, stream: str) -> int:
    digest = hashlib.sha256(f"trdnav-synth-noise/{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def noise_uniform(seed: int, stream: str, row_numbers: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers, one per row number: a counter-based hash (SplitMix64) of the seed,
    the noise decision and the row's number in the whole run, so that chunking cannot change it."""
    with np.errstate(over="ignore"):
        z = row_numbers.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z ^= np.uint64(_stream_key(seed, stream))
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


DRUG_RAW = pa.schema([f for f in SCHEMAS["drug_exposure"] if f.name != "drug_exposure_id"])


def _noisy_conditions(t: pa.Table, seed: int, noise: NoiseRates) -> pa.Table:
    """Recording noise of condition rows: concept ids 0 (only the ICD-10 text), no source concept,
    codes without their dot. ``t`` holds the true rows, numbered by condition_occurrence_id."""
    rows = t.column("condition_occurrence_id").to_numpy()
    u = noise_uniform(seed, "condition_concepts", rows)
    text_only = u < noise.condition_source_value_only
    no_source = u < noise.condition_source_value_only + noise.condition_no_source_concept
    std = np.where(text_only, 0, t.column("condition_concept_id").to_numpy())
    src = np.where(no_source, 0, t.column("condition_source_concept_id").to_numpy())
    undotted = noise_uniform(seed, "condition_dot", rows) < noise.icd_without_dot
    text = t.column("condition_source_value")
    text = pc.if_else(pa.array(undotted), pc.replace_substring(text, ".", ""), text)
    t = t.set_column(2, "condition_concept_id", pa.array(std, pa.int64()))
    t = t.set_column(
        t.schema.get_field_index("condition_source_value"), "condition_source_value", text
    )
    return t.set_column(
        t.schema.get_field_index("condition_source_concept_id"),
        "condition_source_concept_id",
        pa.array(src, pa.int64()),
    )


def _noisy_drugs(
    t: pa.Table, first_fill: int, first_id: int, seed: int, noise: NoiseRates
) -> pa.Table:
    """Recording noise of drug exposures (true fills numbered from ``first_fill`` in the run):
    most end dates left out, missing days_supply (and then no end date), missing quantity,
    duplicate rows. Returns the drug_exposure rows with their ids from ``first_id``."""
    n = t.num_rows
    fills = np.arange(first_fill, first_fill + n)
    keep_end = noise_uniform(seed, "drug_end", fills) < noise.end_date_present
    no_ds = noise_uniform(seed, "drug_days_supply", fills) < noise.missing_days_supply
    no_qty = noise_uniform(seed, "drug_quantity", fills) < noise.missing_quantity
    dup = noise_uniform(seed, "drug_duplicate", fills) < noise.duplicate_drug_row
    end = t.column("drug_exposure_end_date")
    end = pc.if_else(pa.array(keep_end & ~no_ds), end, pa.nulls(n, end.type))
    ds = t.column("days_supply")
    ds = pc.if_else(pa.array(no_ds), pa.nulls(n, ds.type), ds)
    qty = t.column("quantity")
    qty = pc.if_else(pa.array(no_qty), pa.nulls(n, qty.type), qty)
    t = t.set_column(
        t.schema.get_field_index("drug_exposure_end_date"), "drug_exposure_end_date", end
    )
    t = t.set_column(t.schema.get_field_index("days_supply"), "days_supply", ds)
    t = t.set_column(t.schema.get_field_index("quantity"), "quantity", qty)
    t = t.take(pa.array(np.repeat(np.arange(n), 1 + dup.astype(np.int64))))
    ids = pa.array(np.arange(first_id, first_id + t.num_rows), pa.int64())
    return t.add_column(0, "drug_exposure_id", ids)


class _Recorder:
    """Appends a person's true events as OMOP rows (noise is added per chunk, vectorised)."""

    def __init__(self, voc: Vocabulary) -> None:
        self.voc = voc

    def record(self, p: Person, truth: TruthRow, buf: dict[str, _Buffer]) -> None:
        voc, pid = self.voc, p.person_id
        b = p.birth
        sex = "F" if p.female else "M"
        a = buf["person"].add
        a[0](pid)
        a[1](GENDER_CONCEPT[p.female])
        a[2](b.year)
        a[3](b.month)
        a[4](b.day)
        a[5](0)
        a[6](0)
        a[7](sex)
        a = buf["observation_period"].add
        a[0](pid)
        a[1](p.obs_start)
        a[2](p.obs_end)
        a[3](CLAIM_TYPE_CONCEPT)
        if p.dx:
            dx = sorted(p.dx)
            n = len(dx)
            c = buf["condition_occurrence"].cols
            snomed, icd = voc.icd10_snomed, voc.icd10
            c[0].extend([pid] * n)
            c[1].extend([snomed[code] for _, code in dx])
            c[2].extend([d for d, _ in dx])
            c[3].extend([CLAIM_TYPE_CONCEPT] * n)
            c[4].extend([code for _, code in dx])
            c[5].extend([icd[code] for _, code in dx])
        if p.fills:
            fills = sorted(p.fills, key=_BY_DAY)  # stable: same-day fills in simulation order
            n = len(fills)
            x = buf["drug_exposure"].cols
            x[0].extend([pid] * n)
            x[1].extend([f.product.concept_id for f in fills])
            x[2].extend([f.day for f in fills])
            x[3].extend([f.day + f.days_supply - 1 for f in fills])
            x[4].extend([CLAIM_TYPE_CONCEPT] * n)
            x[5].extend([float(f.tablets * f.days_supply) for f in fills])
            x[6].extend([f.days_supply for f in fills])
        if p.procedures:
            procs = sorted(p.procedures)
            n = len(procs)
            pr = buf["procedure_occurrence"].cols
            ids = [voc.procedure[code] for _, code in procs]
            pr[0].extend([pid] * n)
            pr[1].extend(ids)
            pr[2].extend([d for d, _ in procs])
            pr[3].extend([CLAIM_TYPE_CONCEPT] * n)
            pr[4].extend([code for _, code in procs])
            pr[5].extend(ids)
        m = buf["measurement"]
        for d, code, value in sorted(p.measurements):
            _put(m, pid, voc.loinc[code], d, CLAIM_TYPE_CONCEPT, value, code)
        a = buf["ground_truth"].add
        a[0](pid)
        a[1](truth.has_mdd)
        a[2](truth.excluded)
        a[3](truth.is_trd)
        a[4](_NULL if truth.index_date is None else truth.index_date)
        a[5](_NULL if truth.episode_start is None else truth.episode_start)
        a[6](truth.true_failed_adequate_trials)
        a[7](_NULL if truth.age_at_index is None else truth.age_at_index)


def _put(buffer: _Buffer, *values: Any) -> None:
    for add, value in zip(buffer.add, values, strict=True):
        add(value)


_BY_DAY = itemgetter(0)
_Chunk = tuple[dict[str, _Buffer], list[int]]


def _new_buffers() -> dict[str, _Buffer]:
    buf = {
        name: _Buffer(schema, name in ROW_ID_TABLES)
        for name, schema in SCHEMAS.items()
        if name != "drug_exposure"
    }
    buf["drug_exposure"] = _Buffer(DRUG_RAW, False)
    return buf


class _ChunkSimulator:
    """Simulates and records the persons of one chunk (in this process or a worker)."""

    def __init__(self, kb: Knowledge, voc: Vocabulary, settings: SynthSettings, seed: int) -> None:
        self.sim = Simulator(kb, voc, settings)
        self.rules = TruthRules(kb, voc)
        self.recorder = _Recorder(voc)
        self.seed = seed

    def run(self, first: int, last: int) -> _Chunk:
        buf = _new_buffers()
        counts = [0, 0, 0]
        for pid in range(first, last + 1):
            person = self.sim.person(self.seed, pid)
            truth = self.rules.truth(person)
            counts[0] += truth.has_mdd
            counts[1] += truth.excluded is not None
            counts[2] += truth.is_trd
            self.recorder.record(person, truth, buf)
        for b in buf.values():  # workers send the compact arrays back, not the append methods
            b.add = []
        return buf, counts


_WORKER: _ChunkSimulator | None = None


def _worker_init(settings: SynthSettings, seed: int) -> None:
    global _WORKER  # one simulator per worker process
    kb = default_knowledge()
    _WORKER = _ChunkSimulator(kb, build_vocabulary_index(kb), settings, seed)


def _worker_run(first: int, last: int) -> _Chunk:
    if _WORKER is None:
        raise RuntimeError("worker process not initialised")
    return _WORKER.run(first, last)


def _chunk_results(
    chunks: list[tuple[int, int]],
    seed: int,
    settings: SynthSettings,
    kb: Knowledge,
    voc: Vocabulary,
    workers: int,
) -> Iterator[_Chunk]:
    """The chunks' buffers in order; with several workers, one chunk more than workers ahead."""
    if workers <= 1:
        local = _ChunkSimulator(kb, voc, settings, seed)
        for first, last in chunks:
            yield local.run(first, last)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, context, _worker_init, (settings, seed)) as pool:
        pending: deque[Future[_Chunk]] = deque()
        todo = iter(chunks)
        for first, last in itertools.islice(todo, workers + 1):
            pending.append(pool.submit(_worker_run, first, last))
        while pending:
            result = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(_worker_run, *nxt))
            yield result


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
    workers: int | None = 1,
    kb: Knowledge | None = None,
    settings: SynthSettings = DEFAULT_SETTINGS,
) -> SynthSummary:
    """Write ``persons`` synthetic persons' OMOP tables and ground truth to ``out_dir``.

    ``progress`` is called after each chunk with the number of persons written so far. The data
    depend only on ``persons``, ``seed``, the knowledge base and ``settings`` (not the chunk size).
    With ``overwrite`` the generator's own files in ``out_dir`` are replaced; other files stay.
    ``workers``: processes simulating chunks in parallel (None: up to :data:`MAX_AUTO_WORKERS`
    from :data:`AUTO_WORKERS_FROM` persons, else one); the data are the same with any number.
    Workers are spawned, so a calling script needs the ``if __name__ == "__main__":`` guard.
    A knowledge base other than the packaged one runs in this process only.
    """
    problems = []
    if persons < 1:
        problems.append(
            Problem("--persons", "too_small", f"persons must be at least 1, got {persons}")
        )
    if workers is not None and workers < 1:
        problems.append(
            Problem("--workers", "too_small", f"workers must be at least 1, got {workers}")
        )
    if chunk_size < 1:
        problems.append(
            Problem("--chunk-size", "too_small", f"chunk size must be at least 1, got {chunk_size}")
        )
    if problems:
        raise InputError(problems)
    _check_target(out_dir, overwrite)
    started = time.perf_counter()
    default = kb is None or kb is default_knowledge()
    kb = kb or default_knowledge()
    voc = build_vocabulary_index(kb)
    chunks = [
        (first, min(persons, first + chunk_size - 1)) for first in range(1, persons + 1, chunk_size)
    ]
    if workers is None:
        workers = min(MAX_AUTO_WORKERS, os.cpu_count() or 1) if persons >= AUTO_WORKERS_FROM else 1
    workers = max(1, min(workers, len(chunks))) if default else 1
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
    counts = [0, 0, 0]  # MDD, excluded, TRD
    fills = 0
    try:
        for (_, last), (buf, chunk_counts) in zip(
            chunks, _chunk_results(chunks, seed, settings, kb, voc, workers), strict=True
        ):
            counts = [a + b for a, b in zip(counts, chunk_counts, strict=True)]
            for name, b in buf.items():
                table = b.table(rows[name] + 1)
                if name == "condition_occurrence":
                    table = _noisy_conditions(table, seed, settings.noise)
                elif name == "drug_exposure":
                    table = _noisy_drugs(table, fills + 1, rows[name] + 1, seed, settings.noise)
                    fills += len(b)
                writers[name].write_table(table)
                rows[name] += table.num_rows
            del buf
            if progress is not None:
                progress(last)
    finally:
        for w in writers.values():
            w.close()
    mdd, excluded, trd = counts
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
