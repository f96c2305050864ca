"""The web benchmark's data set: 10,000 patients, 1,000,000 measurements, in a SQLite file.

Treatment histories come from ``bench_assess.generate`` (10 medication trials each); each patient
gets 100 measurements: 80 fortnightly PHQ-9 forms with item answers that drift (improving,
worsening or flat, with noise; a few patients answer item 9 positively now and then), 10
QIDS-SR16 and 10 GAD-7 forms on some of the same days. Every history is validated exactly as a
history file is (``records.validate``) and assessed by the core, and its ``patient_summaries`` row
holds ``records.summary_values(records.assess_as_of(...))``, so the patient list is real.

The tables are created by the migrations; rows are written with SQLAlchemy Core bulk inserts
mapped as ``storage/repository.py`` ``_fill`` maps a history (positions, JSON item arrays). After
the build, a sample of patients is read back with ``repository.load_history`` and must equal the
generated history, and their summaries must equal the core's. Histories are generated, validated
and assessed in 2 processes.

The file is cached as ``out/bench/web-<key>.db``, where the key covers ``DATA_VERSION``, the
generator sources, the migrations, the app and knowledge-base versions; ``python
bench/web_data.py [--rebuild]`` builds it (or says where the cached one is).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, text

import bench_assess  # the treatment-history generator of the assessment benchmark
from trdnav import __version__
from trdnav.core.history import History, Medication
from trdnav.knowledge.load import default_knowledge
from trdnav.storage import models as m
from trdnav.storage import records, repository
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import HERE as MIGRATIONS
from trdnav.storage.migrations import upgrade

DATA_VERSION = "1"  # bump when the generator's output changes in a way the key cannot see
N_PATIENTS = 10_000
PHQ9_VISITS = 80
QIDS_EVERY = 8  # a QIDS-SR16 at every 8th PHQ-9 visit (10 of them) ...
GAD7_OFFSET = 4  # ... and a GAD-7 at every 8th, four visits later (10 more): 100 in all
TODAY = date(2024, 6, 1)
SEED = 20240601
CHUNK = 250  # patients per work unit
WORKERS = 2
VERIFY_SAMPLE = 25
TREATMENT_ID_STRIDE = 100  # treatment primary key = patient key * stride + position

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "bench"
HERE = Path(__file__).resolve().parent


def patient_id(i: int) -> str:
    return f"BW{i:05d}"


def _items(rng: random.Random, level: float, n: int, top: int = 3) -> list[int]:
    """``n`` item answers around ``level`` (0..top) with noise."""
    return [max(0, min(top, round(level + rng.uniform(-1.2, 1.2)))) for _ in range(n)]


def _measurements(rng: random.Random, onset: date) -> list[dict[str, Any]]:
    start = rng.uniform(1.6, 2.8)  # mean item answer at baseline: PHQ-9 about 14 to 25
    course = rng.choice(("improving", "improving", "flat", "worsening", "relapsing"))
    end = {
        "improving": rng.uniform(0.2, 1.0),
        "flat": start + rng.uniform(-0.3, 0.3),
        "worsening": min(3.0, start + rng.uniform(0.2, 0.6)),
        "relapsing": rng.uniform(0.3, 0.8),
    }[course]
    item9_chance = rng.choice((0.0,) * 9 + (0.04,))  # one patient in ten, now and then
    out: list[dict[str, Any]] = []
    for k in range(PHQ9_VISITS):
        f = k / (PHQ9_VISITS - 1)
        level = start + (end - start) * f
        if course == "relapsing" and f > 0.7:
            level = min(3.0, level + 1.5 * (f - 0.7) / 0.3)
        day = onset + timedelta(days=14 * k)
        phq9 = _items(rng, level, 8)
        phq9.append(1 if rng.random() < item9_chance else 0)
        out.append({"instrument": "PHQ-9", "date": day, "items": phq9})
        if k % QIDS_EVERY == 0:
            qids = _items(rng, level, 16)
            qids[11] = 0  # item 12 (suicidal ideation) answered like PHQ-9 item 9
            if phq9[8]:
                qids[11] = 1
            out.append({"instrument": "QIDS-SR16", "date": day, "items": qids})
        if k % QIDS_EVERY == GAD7_OFFSET:
            out.append({"instrument": "GAD-7", "date": day, "items": _items(rng, level * 0.8, 7)})
    return out


def history_data(i: int) -> dict[str, Any]:
    """Patient ``i`` in the history format (deterministic: it depends on ``i`` alone)."""
    rng = random.Random(SEED * 100_003 + i)
    data = bench_assess.generate(rng, i)
    data.pop("assessed_on", None)  # a live record, assessed as of the server's today
    data["patient"] = {
        "id": patient_id(i),
        "birth_date": date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50)),
        "sex": rng.choice(("female", "female", "male")),
    }
    data["measurements"] = _measurements(rng, data["episode"]["onset"])
    return data


# --- rows, mapped as repository._fill maps a history ---------------------------------------------

_TREATMENT_COLUMNS = tuple(
    c.name for c in m.Treatment.__table__.columns if c.name not in ("id", "patient_id", "position")
)


def _treatment_row(pk: int, position: int, patient_pk: int, t: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(_TREATMENT_COLUMNS)
    fields = type(t).model_fields
    for name in _TREATMENT_COLUMNS:
        if name in fields:
            row[name] = getattr(t, name)
    row.update(id=pk, patient_id=patient_pk, position=position, type=t.type)
    row["outcome"] = str(t.outcome)
    return row


@dataclass
class Rows:
    patients: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    treatments: list[dict[str, Any]] = field(default_factory=list)
    dose_steps: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)

    def tables(self) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
        # parents before children (foreign keys are enforced)
        yield m.Patient.__table__, self.patients  # type: ignore[misc]
        yield m.Episode.__table__, self.episodes  # type: ignore[misc]
        yield m.Condition.__table__, self.conditions  # type: ignore[misc]
        yield m.Treatment.__table__, self.treatments  # type: ignore[misc]
        yield m.DoseStep.__table__, self.dose_steps  # type: ignore[misc]
        yield m.Measurement.__table__, self.measurements  # type: ignore[misc]
        yield m.PatientSummary.__table__, self.summaries  # type: ignore[misc]


def add_history(rows: Rows, pk: int, history: History, summary: dict[str, Any]) -> None:
    """The rows of one validated history, as ``repository.save_history`` stores it."""
    if history.labs or history.pgx or history.current_medications or history.clinician_alerts:
        raise SystemExit("web_data maps patients, episodes, treatments and measurements only")
    pt, ep = history.patient, history.episode
    rows.patients.append(
        {
            "id": pk,
            "external_id": pt.id,
            "birth_date": pt.birth_date,
            "sex": pt.sex.value,
            "pregnant": pt.pregnant,
            "breastfeeding": pt.breastfeeding,
            "assessed_on": history.assessed_on,
            "staging_inputs": (
                history.staging_inputs.model_dump(mode="json") if history.staging_inputs else None
            ),
            "version": 1,
        }
    )
    rows.episodes.append(
        {
            "patient_id": pk,
            "onset": ep.onset,
            "diagnosis": ep.diagnosis.value,
            "severity": ep.severity.value,
        }
    )
    rows.conditions.extend(
        {"patient_id": pk, "position": i, "name": c.name, "status": c.status}
        for i, c in enumerate(history.conditions)
    )
    if len(history.treatments) >= TREATMENT_ID_STRIDE:
        raise SystemExit(f"at most {TREATMENT_ID_STRIDE - 1} treatments per generated patient")
    for i, t in enumerate(history.treatments):
        tpk = pk * TREATMENT_ID_STRIDE + i
        rows.treatments.append(_treatment_row(tpk, i, pk, t))
        if isinstance(t, Medication):
            rows.dose_steps.extend(
                {
                    "treatment_id": tpk,
                    "position": j,
                    "from_date": d.from_,
                    "mg_per_day": d.mg_per_day,
                }
                for j, d in enumerate(t.doses)
            )
    rows.measurements.extend(
        {
            "patient_id": pk,
            "position": i,
            "instrument": x.instrument,
            "date": x.date,
            "items": list(x.items) if x.items is not None else None,
            "total": x.total,
        }
        for i, x in enumerate(history.measurements)
    )
    rows.summaries.append({"patient_id": pk, "computed_at": datetime.now(UTC), **summary})


def build_chunk(bounds: tuple[int, int]) -> Rows:
    """Generate, validate and assess patients ``start..stop-1`` (runs in a worker process)."""
    kb = default_knowledge()
    rows = Rows()
    for i in range(*bounds):
        history = records.validate(history_data(i), kb, TODAY)
        summary = records.summary_values(records.assess_as_of(history, kb, TODAY))
        add_history(rows, i + 1, history, summary)
    return rows


# --- the cached file ------------------------------------------------------------------------


def cache_key() -> str:
    """A digest of what the file's content depends on: the generator's code and constants, the
    row mapping, the migrations, and the app and knowledge-base versions (summaries)."""
    digest = hashlib.sha256()
    code = (bench_assess.generate, _items, _measurements, history_data, _treatment_row, add_history)
    for fn in code:
        digest.update(inspect.getsource(fn).encode())
    for source in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(source.read_bytes())
    constants = (DATA_VERSION, N_PATIENTS, PHQ9_VISITS, QIDS_EVERY, GAD7_OFFSET, TODAY, SEED)
    kb = default_knowledge()
    for part in (*constants, __version__, kb.kb_version):
        digest.update(str(part).encode())
    return digest.hexdigest()[:12]


def dataset_path() -> Path:
    return OUT / f"web-{cache_key()}.db"


def _insert(url: str, chunks: Iterator[Rows]) -> tuple[int, int]:
    engine = make_engine(url)
    n_patients = n_measurements = 0
    try:
        with engine.connect() as conn:
            conn.execute(text("PRAGMA synchronous=OFF"))
            for rows in chunks:
                for table, values in rows.tables():
                    if values:
                        conn.execute(table.insert(), values)
                conn.commit()
                n_patients += len(rows.patients)
                n_measurements += len(rows.measurements)
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()
    return n_patients, n_measurements


def verify(url: str, sample: int = VERIFY_SAMPLE) -> None:
    """Read a sample back through the repository: it must equal what was generated."""
    kb = default_knowledge()
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            for i in random.Random(SEED).sample(range(N_PATIENTS), sample):
                expected = records.validate(history_data(i), kb, TODAY)
                stored = repository.load_history(session, patient_id(i), "bench")
                if stored != expected:
                    raise SystemExit(f"{patient_id(i)} does not read back as it was generated")
                row = session.get(m.PatientSummary, i + 1)
                want = records.summary_values(records.assess_as_of(expected, kb, TODAY))
                got = {name: getattr(row, name) for name in want} if row else None
                if got != want:
                    raise SystemExit(f"{patient_id(i)}: stored summary differs from the core's")
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Dataset:
    path: Path
    built_in_seconds: float | None  # None: taken from the cache
    patients: int
    measurements: int


def _count(path: Path) -> tuple[int, int]:
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            patients = conn.scalar(text("SELECT count(*) FROM patients")) or 0
            measurements = conn.scalar(text("SELECT count(*) FROM measurements")) or 0
    finally:
        engine.dispose()
    return patients, measurements


def ensure_dataset(rebuild: bool = False, log: Any = print) -> Dataset:
    """The cached data set, built first if missing (or if ``rebuild``)."""
    path = dataset_path()
    if path.exists() and not rebuild:
        return Dataset(path, None, *_count(path))
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{tmp}"
    log(f"building the web data set ({N_PATIENTS:,} patients) in {WORKERS} processes …")
    t0 = time.perf_counter()
    upgrade(url)
    bounds = [(s, min(s + CHUNK, N_PATIENTS)) for s in range(0, N_PATIENTS, CHUNK)]
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        n_patients, n_measurements = _insert(url, pool.imap(build_chunk, bounds))
    built = time.perf_counter() - t0
    verify(url)
    os.replace(tmp, path)
    for old in OUT.glob("web-*.db"):
        if old != path:
            old.unlink()
    return Dataset(path, built, n_patients, n_measurements)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="build even if a cached file exists")
    args = parser.parse_args()
    ds = ensure_dataset(rebuild=args.rebuild)
    how = "cached" if ds.built_in_seconds is None else f"built in {ds.built_in_seconds:.1f} s"
    print(f"{ds.path}: {ds.patients:,} patients, {ds.measurements:,} measurements ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
