"""Crash safety: the server, ``trdnav import`` and ``trdnav restore`` killed with SIGKILL.

Each run returns a report of figures; the suite runs a few kills, ``bench/bench_kills.py`` many.

- :func:`server_kills`: writers (session forms and bearer-token API calls, each on its own
  patient) add medications with unique markers while the server is SIGKILLed after a random
  delay; the database is checked with the server down (:func:`harness.check_store`), the server
  restarted, and so on.
- :func:`import_kills`: ``trdnav import`` of many histories is killed after a random delay; the
  imported patients must be all there (all at the same new version) or none of them.
- :func:`restore_kills`: ``trdnav restore`` of a backup is killed (its whole process group, with
  ``psql`` on PostgreSQL) after a random delay; the database must be exactly as before the
  restore or exactly the backup.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml
from sqlalchemy import text

from tests.reliability.harness import (
    ACKNOWLEDGED,
    EXAMPLES,
    ApiWriter,
    Database,
    FormWriter,
    Server,
    StoreCheck,
    Write,
    check_store,
    clean_env,
    cli,
    fresh_database,
    in_process,
    new_marker,
    patient_ids,
    prepare,
    trdnav_command,
)
from trdnav.storage.engine import make_engine

WARM_UP_SECONDS = 30


@dataclass
class KillReport:
    database: str
    kills: int = 0
    survived: int = 0  # kills after which the check passed and the server came back
    acknowledged: int = 0
    attempted: int = 0
    lost: int = 0
    duplicated: int = 0
    half_applied: int = 0
    integrity_failures: int = 0
    unexpected: Counter[int] = field(default_factory=Counter)  # answers other than 201/303
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.database:<10} kills {self.kills:>3}  survived {self.survived:>3}  "
            f"writes acknowledged {self.acknowledged:>5} (of {self.attempted} sent)  "
            f"lost {self.lost}  half-applied {self.half_applied}  duplicated {self.duplicated}  "
            f"integrity failures {self.integrity_failures}  other answers {dict(self.unexpected)}"
        )

    def add(self, check: StoreCheck, what: str) -> bool:
        self.lost += len(check.lost)
        self.duplicated += len(check.duplicated)
        self.half_applied += len(check.half_applied)
        self.integrity_failures += bool(check.integrity)
        if not check.ok:
            self.problems.append(f"{what}: {check.summary()}")
        return check.ok


class _Writers:
    """Writer threads, one per patient, writing until stopped or the server is gone."""

    def __init__(self, base: str, token: str, patients: list[str], rng: random.Random) -> None:
        self.acknowledged: list[Write] = []
        self.unexpected: Counter[int] = Counter()
        self.attempted = 0
        self.stop = threading.Event()
        self.first = threading.Event()  # set at the first acknowledged write
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run, args=(base, token, pid, i % 2 == 0, rng.random()), daemon=True
            )
            for i, pid in enumerate(patients)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, base: str, token: str, pid: str, forms: bool, seed: float) -> None:
        rng = random.Random(seed)  # noqa: S311 - which writes name a version, not secrets
        writer: FormWriter | ApiWriter = FormWriter(base) if forms else ApiWriter(base, token)
        try:
            if isinstance(writer, FormWriter):
                writer.sign_in()
            while not self.stop.is_set():
                marker = new_marker()
                with self._lock:
                    self.attempted += 1
                if isinstance(writer, FormWriter):
                    status = writer.add(pid, marker)
                else:  # half the API appends name the version they read (If-Match)
                    version = writer.version(pid) if rng.random() < 0.5 else None
                    status = writer.add(pid, marker, version)
                with self._lock:
                    if status in ACKNOWLEDGED:
                        self.acknowledged.append(Write(pid, marker, writer.via))
                        self.first.set()
                    else:
                        self.unexpected[status] += 1
        except (httpx.HTTPError, RuntimeError):
            pass  # the server was killed: the write in flight is not acknowledged
        finally:
            writer.close()


def server_kills(
    kind: str,
    kills: int,
    folder: Path,
    rng: random.Random,
    writers: int = 4,
    delay: tuple[float, float] = (0.0, 1.5),
    log: Any = None,
) -> KillReport:
    """SIGKILL the server ``kills`` times under acknowledged writes; check after each kill."""
    report = KillReport(kind)
    db = fresh_database(kind, folder)
    try:
        token = prepare(db, writers)
        pids = patient_ids(writers)
        server = Server(db.url, folder / f"server-{kind}.log")
        acknowledged: list[Write] = []
        for n in range(kills):
            server.start()
            batch = _Writers(server.url, token, pids, rng)
            batch.start()
            # a fresh server's first writes are slow (caches fill): the random moment of the kill
            # is counted from the first acknowledged write, so that it falls in the stream
            batch.first.wait(timeout=WARM_UP_SECONDS)
            time.sleep(rng.uniform(*delay))
            server.kill()
            batch.join()
            report.kills += 1
            acknowledged += batch.acknowledged
            report.attempted += batch.attempted
            report.unexpected.update(batch.unexpected)
            # the summaries are recomputed on every 5th check and the last (they cost most)
            check = check_store(db, acknowledged, check_summaries=n % 5 == 4 or n == kills - 1)
            if report.add(check, f"kill {n + 1}"):
                report.survived += 1
            if log is not None:
                log(f"  kill {n + 1}: {check.summary()}")
        report.acknowledged = len(acknowledged)
        server.start()  # it comes back after the last kill too
        if httpx.get(server.url + "/signin", timeout=10).status_code != 200:
            report.problems.append("the server did not come back after the last kill")
        server.stop()
        if report.unexpected:
            report.problems.append(f"answers other than 201/303: {dict(report.unexpected)}")
    finally:
        db.drop()
    return report


# --- trdnav import -------------------------------------------------------------------------------


def _import_files(folder: Path, count: int) -> list[Path]:
    """``count`` history files: the examples again and again under new patient ids IMP0001…"""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES]
    files = []
    for i in range(count):
        data = dict(sources[i % len(sources)])
        data["patient"] = {**data["patient"], "id": f"IMP{i + 1:04d}"}
        path = folder / f"IMP{i + 1:04d}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        files.append(path)
    return files


def _versions(db: Database, prefix: str) -> dict[str, int]:
    engine = make_engine(db.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT external_id, version FROM patients WHERE external_id LIKE :p"),
                {"p": prefix + "%"},
            ).all()
    finally:
        engine.dispose()
    return {pid: int(v) for pid, v in rows}


class _Window:
    """When to kill a run: uniform in [lo, hi] seconds after its start. ``hi`` starts at a full
    run's time and shrinks to the time of any run that finished before its kill, ``lo`` (half the
    interpreter's start) to at most half of ``hi`` (the machine's load changes how long a run
    takes), so the kills keep falling inside runs."""

    def __init__(self, startup: float, full_run: float) -> None:
        self.lo, self.hi = startup / 2, max(full_run, startup / 2 + 0.1)

    def pick(self, rng: random.Random) -> float:
        return rng.uniform(self.lo, self.hi)

    def finished_in(self, seconds: float) -> None:
        self.hi = min(self.hi, seconds * 0.98)
        self.lo = min(self.lo, self.hi / 2)


def _killed_run(args: list[str], after: float) -> tuple[bool, float]:
    """Run ``trdnav ARGS`` in its own process group; SIGKILL the group after ``after`` seconds.
    Returns whether it had finished by itself before the kill, and how long it ran."""
    started = time.monotonic()
    process = subprocess.Popen(
        [*trdnav_command(), *args],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        process.wait(timeout=after)
        return True, time.monotonic() - started
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        return False, time.monotonic() - started


@dataclass
class ProcessKillReport:
    database: str
    command: str
    kills: int = 0  # runs killed before they finished
    finished: int = 0  # runs that finished before the kill came
    nothing: int = 0  # killed runs that left the database as before
    whole: int = 0  # killed runs whose work was all there (committed just before the kill)
    partial: int = 0  # killed runs that left part of their work: must be 0
    integrity_failures: int = 0
    half_applied: int = 0
    seconds: float = 0.0  # how long one full run takes
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.database:<10} {self.command:<8} killed {self.kills:>3} "
            f"(run takes {self.seconds:.1f} s; {self.finished} finished first)  "
            f"nothing {self.nothing}  whole {self.whole}  partial {self.partial}  "
            f"half-applied {self.half_applied}  integrity failures {self.integrity_failures}"
        )


def _after_kill_checks(report: ProcessKillReport, db: Database, what: str) -> None:
    check = check_store(db, [], check_summaries=False)
    report.integrity_failures += bool(check.integrity)
    report.half_applied += len(check.half_applied)
    if not check.ok:
        report.problems.append(f"{what}: {check.summary()}")


def import_kills(
    kind: str, kills: int, folder: Path, rng: random.Random, histories: int = 60
) -> ProcessKillReport:
    """Kill ``trdnav import`` of ``histories`` files ``kills`` times at random moments of its run.

    The run is one transaction, so the imported patients must be all at one version (all
    imported by the same run) and either all from before the killed run or all from it."""
    report = ProcessKillReport(kind, "import")
    db = fresh_database(kind, folder)
    try:
        prepare(db, 0)
        files = [str(p) for p in _import_files(folder / f"import-{kind}", histories)]
        args = ["import", *files, "--database-url", db.url, "--today", "2024-06-01"]
        started = time.monotonic()
        cli(*args)  # a full run: every patient at version 1
        report.seconds = time.monotonic() - started
        window = _Window(_startup_seconds(), report.seconds)
        expected = 1
        for n in range(kills):
            finished, ran = _killed_run(args, window.pick(rng))
            if finished:
                window.finished_in(ran)
            versions = _versions(db, "IMP")
            counts = Counter(versions.values())
            if len(versions) != histories or len(counts) != 1:
                report.partial += 1
                report.problems.append(f"kill {n + 1}: versions {dict(counts)}")
            elif finished:
                report.finished += 1
            elif next(iter(counts)) == expected:
                report.kills += 1
                report.nothing += 1
            else:
                report.kills += 1
                report.whole += 1
            expected = max(counts, default=expected)
            _after_kill_checks(report, db, f"import kill {n + 1}")
    finally:
        db.drop()
    return report


_STARTUP: list[float] = []


def _startup_seconds() -> float:
    """How long ``trdnav`` takes to start (a kill before then hits no database work)."""
    if not _STARTUP:
        started = time.monotonic()
        cli("--help")
        _STARTUP.append(time.monotonic() - started)
    return _STARTUP[0]


# --- trdnav restore ------------------------------------------------------------------------------


def _fingerprint(db: Database) -> tuple[Any, ...]:
    """What the database holds, in brief: every patient and version, and the row counts."""
    engine = make_engine(db.url)
    try:
        with engine.connect() as conn:
            patients = tuple(
                conn.execute(
                    text("SELECT external_id, version FROM patients ORDER BY external_id")
                ).all()
            )
            counts = tuple(
                conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608
                for t in ("measurements", "treatments", "current_medications", "audit_events")
            )
    finally:
        engine.dispose()
    return patients, counts


def _add_audit_rows(db: Database, rows: int) -> None:
    engine = make_engine(db.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_events (who, at, action, entity) "
                    "VALUES ('filler', CURRENT_TIMESTAMP, 'read', 'patient')"
                ),
                [{}] * rows,
            )
    finally:
        engine.dispose()


def restore_kills(
    kind: str,
    kills: int,
    folder: Path,
    rng: random.Random,
    histories: int = 200,
    filler: int = 100_000,
) -> ProcessKillReport:
    """Kill ``trdnav restore`` ``kills`` times at random moments; the database must be either the
    backup (restored whole) or exactly what it was before (nothing of the restore)."""
    report = ProcessKillReport(kind, "restore")
    db = fresh_database(kind, folder)
    try:
        prepare(db, 0)
        files = [str(p) for p in _import_files(folder / f"restore-{kind}", histories)]
        in_process("import", *files, "--database-url", db.url, "--today", "2024-06-01")
        _add_audit_rows(db, filler)  # a backup of some size: the restore takes a while
        backup = folder / f"backup-{kind}.{'db' if kind == 'sqlite' else 'sql'}"
        in_process("backup", str(backup), "--database-url", db.url)
        backed_up = _fingerprint(db)
        change = [*files[:20], "--database-url", db.url, "--today", "2024-06-01"]
        in_process("import", *change)  # the database moves on from the backup
        args = ["restore", str(backup), "--database-url", db.url]
        started = time.monotonic()
        cli(*args)
        report.seconds = time.monotonic() - started
        window = _Window(_startup_seconds(), report.seconds)
        for n in range(kills):
            if _fingerprint(db) == backed_up:
                in_process("import", *change)
            before = _fingerprint(db)
            finished, ran = _killed_run(args, window.pick(rng))
            if finished:
                window.finished_in(ran)
            after = _fingerprint(db)
            if finished:
                report.finished += 1
                if after != backed_up:
                    report.partial += 1
                    report.problems.append(f"restore {n + 1} finished but is not the backup")
            elif after == before:
                report.kills += 1
                report.nothing += 1
            elif after == backed_up:
                report.kills += 1
                report.whole += 1
            else:
                report.kills += 1
                report.partial += 1
                report.problems.append(f"restore kill {n + 1}: neither before nor the backup")
            _after_kill_checks(report, db, f"restore kill {n + 1}")
    finally:
        db.drop()
    return report
