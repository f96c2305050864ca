"""Concurrent editors against the real server: no lost update, no deadlock, no 500.

:func:`editors` runs two groups at once for a fixed time: ``same`` clients all editing one record
and ``different`` clients each editing its own. Half of each group are browsers (session cookie,
the form's CSRF token and ``version``), half are API clients (bearer token, ``If-Match`` with the
version they read). Each client reads the record's version, then adds a medication whose note is
a unique marker, at that version, as fast as it can. An answer is *accepted* (303 / 201),
*refused* as stale (409 for a form, 412 for the API), or an error (anything else, or no answer
within the client's timeout). At the end the database must hold every accepted marker exactly
once and no refused one, each record's version must have grown by exactly its accepted changes,
and :func:`harness.check_store` must find nothing half-applied.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from tests.reliability.harness import (
    ApiWriter,
    FormWriter,
    Server,
    Write,
    check_store,
    fresh_database,
    new_marker,
    patient_ids,
    prepare,
)

ACCEPTED = {"form": 303, "api": 201}
REFUSED = {"form": 409, "api": 412}


@dataclass
class Group:
    name: str
    clients: int
    accepted: list[Write] = field(default_factory=list)
    refused: list[Write] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # "500", "timeout", …
    latencies: list[float] = field(default_factory=list)

    def line(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        p95 = lat[int(0.95 * (len(lat) - 1))]
        return (
            f"{self.name:<10} {self.clients} clients  accepted {len(self.accepted):>5}  "
            f"refused (409/412) {len(self.refused):>5}  errors {dict(self.errors) or 0}  "
            f"write p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )


@dataclass
class ConcurrencyReport:
    database: str
    seconds: float
    groups: list[Group]
    lost: int = 0  # accepted changes missing at the end
    refused_stored: int = 0  # refused changes present at the end
    version_mismatches: list[str] = field(default_factory=list)
    half_applied: int = 0
    integrity_failures: int = 0
    ended_in: float = 0.0  # how long the run took to stop (a deadlock would never stop)
    problems: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(sum(g.errors.values()) for g in self.groups)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.refused_stored
            or self.version_mismatches
            or self.half_applied
            or self.integrity_failures
            or self.errors
            or self.problems
        )

    def lines(self) -> list[str]:
        return [
            f"{self.database}: {self.seconds:.0f} s, stopped {self.ended_in:.1f} s after the end"
            f"  lost updates {self.lost}  refused but stored {self.refused_stored}  "
            f"version mismatches {len(self.version_mismatches)}  half-applied "
            f"{self.half_applied}  integrity failures {self.integrity_failures}",
            *("  " + g.line() for g in self.groups),
        ]


def _client(
    group: Group,
    lock: threading.Lock,
    writer: FormWriter | ApiWriter,
    pid: str,
    until: float,
) -> None:
    while time.monotonic() < until:
        marker = new_marker()
        try:
            if isinstance(writer, FormWriter):
                at = writer.form(pid)
                started = time.monotonic()
                status = writer.add(pid, marker, at)
            else:
                version = writer.version(pid)
                started = time.monotonic()
                status = writer.add(pid, marker, version)
        except httpx.TimeoutException:
            with lock:
                group.errors["timeout"] += 1
            continue
        except (httpx.HTTPError, RuntimeError) as exc:
            with lock:
                group.errors[type(exc).__name__ + ": " + str(exc)[:60]] += 1
            continue
        elapsed = time.monotonic() - started
        write = Write(pid, marker, writer.via)
        with lock:
            group.latencies.append(elapsed)
            if status == ACCEPTED[writer.via]:
                group.accepted.append(write)
            elif status == REFUSED[writer.via]:
                group.refused.append(write)
            else:
                group.errors[str(status)] += 1


def editors(
    kind: str, seconds: float, folder: Path, same: int = 20, different: int = 20, workers: int = 2
) -> ConcurrencyReport:
    """``same`` clients on one record and ``different`` on their own, together, for ``seconds``."""
    db = fresh_database(kind, folder)
    try:
        token = prepare(db, 1 + different)
        pids = patient_ids(1 + different)
        before = check_store(db, [], check_summaries=False).versions
        server = Server(db.url, folder / f"concurrency-{kind}.log", workers=workers)
        server.start()
        try:
            groups = [Group("same", same), Group("different", different)]
            plan: list[tuple[Group, str, int]] = [(groups[0], pids[0], i) for i in range(same)]
            plan += [(groups[1], pids[1 + i], i) for i in range(different)]
            writers: list[FormWriter | ApiWriter] = [
                FormWriter(server.url) if i % 2 == 0 else ApiWriter(server.url, token)
                for _group, _pid, i in plan
            ]
            browsers = [w for w in writers if isinstance(w, FormWriter)]
            with ThreadPoolExecutor(max_workers=8) as pool:  # sign in as browsers do: at once
                list(pool.map(FormWriter.sign_in, browsers))
            lock = threading.Lock()
            until = time.monotonic() + seconds
            threads = [
                threading.Thread(target=_client, args=(g, lock, w, pid, until), daemon=True)
                for (g, pid, _i), w in zip(plan, writers, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(0.0, until - time.monotonic()) + 120)
            report = ConcurrencyReport(kind, seconds, groups)
            report.ended_in = time.monotonic() - until
            if any(t.is_alive() for t in threads):
                report.problems.append("a client never returned (deadlock?)")
            for w in writers:
                w.close()
            if server.tracebacks():
                report.problems.append(f"{server.tracebacks()} tracebacks in the server log")
        finally:
            server.stop()
        accepted = [w for g in groups for w in g.accepted]
        check = check_store(db, accepted, check_summaries=True)
        report.lost = len(check.lost)
        report.half_applied = len(check.half_applied)
        report.integrity_failures = bool(check.integrity)
        report.problems += check.half_applied[:5] + check.integrity[:5]
        report.refused_stored = sum(
            check.markers[f"{w.patient_id}/{w.marker}"] > 0 for g in groups for w in g.refused
        )
        if check.duplicated:
            report.problems.append(f"{len(check.duplicated)} changes stored twice")
        grown = Counter(w.patient_id for w in accepted)
        for pid in pids:
            want = before[pid] + grown[pid]
            if check.versions[pid] != want:
                report.version_mismatches.append(
                    f"{pid}: version {check.versions[pid]}, expected {want}"
                )
    finally:
        db.drop()
    return report
