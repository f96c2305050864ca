"""The real server under faults: databases, a `trdnav serve` subprocess, writers and the checks.

Shared by the suite (``tests/reliability/``, short runs) and ``bench/bench_kills.py`` /
``bench/bench_concurrency.py`` (long runs). Nothing is mocked:

- :func:`fresh_database` makes an empty SQLite file or a throwaway PostgreSQL database;
  :func:`prepare` migrates it, creates the clinician (``trdnav demo``'s user and password) and a
  bearer token for it, and stores the first example histories (``EX01``…) as the clinic would.
- :class:`Server` runs ``trdnav serve`` (uvicorn) on a free loopback port with ``TRDNAV_DEV=1`` and
  a fixed today; :meth:`Server.kill` sends SIGKILL, :meth:`Server.start` starts it again.
- :class:`FormWriter` signs in through the real ``/signin`` form (its token, then the POST) and
  adds current medications through the page form (session cookie + CSRF token + ``version``);
  :class:`ApiWriter` adds them through the JSON API with the bearer token. Each write carries a
  unique marker in its ``note``; a write is *acknowledged* when its answer (303 or 201) arrived.
- :func:`check_store` reads the database directly (server stopped or running) and reports what
  was lost, what is half-applied and whether the integrity checks pass.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx2 as httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TODAY = "2024-06-01"  # the examples are dated for it (as in the browser tests)
USER = "clinician"
PASSWORD = "demo-clinician-2026"
STARTUP_SECONDS = 60
REQUEST_TIMEOUT = 30.0
MARKER = re.compile(r"^w-[0-9a-f]+$")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')


# --- databases -----------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    url: str
    name: str = ""  # the PostgreSQL database's name

    def drop(self) -> None:
        if self.kind == "postgresql":
            admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            finally:
                admin.dispose()


def fresh_database(kind: str, folder: Path) -> Database:
    """An empty database: a SQLite file in ``folder`` or a new PostgreSQL database."""
    if kind == "sqlite":
        return Database(kind, f"sqlite:///{folder / f'trdnav-{uuid.uuid4().hex[:8]}.db'}")
    name = f"trdnav_rel_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return Database(kind, PG_SERVER.rsplit("/", 1)[0] + "/" + name, name)


def trdnav_command() -> list[str]:
    script = Path(sys.executable).with_name("trdnav")
    return [str(script)] if script.exists() else [sys.executable, "-m", "trdnav"]


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDNAV_")}
    env["TRDNAV_DEV"] = "1"
    return env


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``trdnav ARGS`` as the clinic would; fail loudly if it fails."""
    done = subprocess.run(
        [*trdnav_command(), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"trdnav {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")
    return done


def prepare(db: Database, patients: int) -> str:
    """Migrate, create the clinician and store the first ``patients`` examples; return a token."""
    from trdnav.cli_web import create_user
    from trdnav.knowledge.load import default_knowledge
    from trdnav.storage import records
    from trdnav.storage.engine import make_engine, make_sessionmaker
    from trdnav.storage.migrations import upgrade

    upgrade(db.url)
    create_user(db.url, USER, "clinician", PASSWORD)
    kb, today = default_knowledge(), date.fromisoformat(TODAY)
    engine = make_engine(db.url)
    try:
        with make_sessionmaker(engine)() as session:
            for path in EXAMPLES[:patients]:
                import yaml

                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                records.save(session, records.validate(data, kb, today), kb, today, "setup")
    finally:
        engine.dispose()
    return in_process("user", "token", USER, "--database-url", db.url).strip().splitlines()[-1]


def in_process(*args: str) -> str:
    """Run ``trdnav ARGS`` in this process (the same command, without a new interpreter's start);
    its output. For setting up; what is killed always runs as a real subprocess."""
    from typer.testing import CliRunner

    from trdnav.cli import app

    result = CliRunner().invoke(app, list(args), env={"TRDNAV_DEV": "1"})
    if result.exit_code != 0:
        raise RuntimeError(f"trdnav {' '.join(args[:2])} failed: {result.output}")
    return result.output


def patient_ids(patients: int) -> list[str]:
    """The ids of the examples :func:`prepare` stores (``EX01``…)."""
    return [_example_id(path) for path in EXAMPLES[:patients]]


def _example_id(path: Path) -> str:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return str(data["patient"]["id"])


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``trdnav serve`` on a free loopback port; restartable after a SIGKILL."""

    def __init__(self, url: str, log: Path, workers: int = 1) -> None:
        self.database_url, self.log, self.workers = url, log, workers
        log.write_bytes(b"")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            *trdnav_command(),
            "serve",
            "--database-url",
            self.database_url,
            "--port",
            str(port),
            "--today",
            TODAY,
            "--workers",
            str(self.workers),
        ]
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                command,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"trdnav serve did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/signin", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and its workers (its whole process group), then reap it."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def tracebacks(self) -> int:
        return self.log.read_text(encoding="utf-8", errors="replace").count("Traceback")


# --- writers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    patient_id: str
    marker: str
    via: str  # "form" or "api"


def new_marker() -> str:
    return "w-" + uuid.uuid4().hex[:16]


def medication(marker: str) -> dict[str, Any]:
    return {"drug": "lisinopril", "mg_per_day": 10, "note": marker}


class FormWriter:
    """A clinician's browser: signs in through the form, adds medications through the page form."""

    via = "form"

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT, follow_redirects=False)

    def sign_in(self) -> None:
        page = self.client.get("/signin")
        token = _CSRF.search(page.text)
        if page.status_code != 200 or token is None:
            raise RuntimeError(f"/signin: {page.status_code} without a token")
        answer = self.client.post(
            "/signin",
            data={"csrf_token": token[1], "username": USER, "password": PASSWORD, "next": ""},
        )
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in refused: {answer.status_code}")

    def form(self, patient_id: str) -> tuple[str, int]:
        """The form's CSRF token and the record version it was read at."""
        page = self.client.get(f"/patients/{patient_id}/medications/new")
        if page.status_code != 200:
            raise RuntimeError(f"form: {page.status_code}")
        token, version = _CSRF.search(page.text), _VERSION.search(page.text)
        if token is None or version is None:
            raise RuntimeError("form without csrf token or version")
        return token[1], int(version[1])

    def add(self, patient_id: str, marker: str, at: tuple[str, int] | None = None) -> int:
        """POST the form (at a version read before, or read now); the answer's status."""
        token, version = at or self.form(patient_id)
        item = medication(marker)
        answer = self.client.post(
            f"/patients/{patient_id}/medications/new",
            data={
                "csrf_token": token,
                "version": str(version),
                "drug": item["drug"],
                "mg_per_day": str(item["mg_per_day"]),
                "start": "",
                "note": marker,
            },
        )
        return answer.status_code

    def close(self) -> None:
        self.client.close()


class ApiWriter:
    """An API client with a bearer token: appends medications (If-Match when a version is given)."""

    via = "api"

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base, timeout=REQUEST_TIMEOUT, headers={"Authorization": f"Bearer {token}"}
        )

    def version(self, patient_id: str) -> int:
        answer = self.client.get(f"/api/patients/{patient_id}")
        if answer.status_code != 200:
            raise RuntimeError(f"read: {answer.status_code}")
        return int(answer.json()["version"])

    def add(self, patient_id: str, marker: str, version: int | None = None) -> int:
        headers = {} if version is None else {"If-Match": f'"{version}"'}
        answer = self.client.post(
            f"/api/patients/{patient_id}/current-medications",
            json=medication(marker),
            headers=headers,
        )
        return answer.status_code

    def close(self) -> None:
        self.client.close()


ACKNOWLEDGED = frozenset({201, 303})


# --- checks --------------------------------------------------------------------------------------

_CHILDREN = (
    "episodes",
    "conditions",
    "treatments",
    "measurements",
    "labs",
    "pgx_results",
    "current_medications",
    "clinician_alerts",
    "patient_summaries",
)


@dataclass
class StoreCheck:
    """What the database holds against what was acknowledged."""

    acknowledged: int = 0
    lost: list[Write] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # markers stored more than once
    half_applied: list[str] = field(default_factory=list)  # what is inconsistent, in words
    integrity: list[str] = field(default_factory=list)  # integrity problems (empty: ok)
    markers: Counter[str] = field(default_factory=Counter)  # "patient/marker" stored, by count
    versions: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.half_applied or self.integrity)

    def summary(self) -> str:
        return (
            f"acknowledged {self.acknowledged}, lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, half-applied {len(self.half_applied)}, "
            f"integrity {'ok' if not self.integrity else self.integrity}"
            + (f"; {self.half_applied[:5]}" if self.half_applied else "")
        )


def _integrity(conn: Any, kind: str) -> list[str]:
    problems: list[str] = []
    if kind == "sqlite":
        result = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
        if result != ["ok"]:
            problems.append(f"integrity_check: {result[:5]}")
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        if str(mode).lower() != "wal":
            problems.append(f"journal_mode is {mode}, expected wal")
        broken = list(conn.exec_driver_sql("PRAGMA foreign_key_check"))
        if broken:
            problems.append(f"foreign_key_check: {broken[:5]}")
        return problems
    conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
    indexes = conn.exec_driver_sql(
        "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.amname = 'btree' AND n.nspname = 'public'"
    ).all()
    for (index,) in indexes:
        try:
            conn.exec_driver_sql(f"SELECT bt_index_check('{index}'::regclass, true)")
        except Exception as exc:  # noqa: BLE001 - any failure is an integrity problem to report
            problems.append(f"bt_index_check({index}): {exc}")
    if not indexes:
        problems.append("no btree index found to check")
    return problems


def check_store(
    db: Database, acknowledged: list[Write], kb: Any = None, check_summaries: bool = True
) -> StoreCheck:
    """Compare the database with the acknowledged writes; check consistency and integrity.

    Half-applied means any of: a patient without its episode or summary; a child row (or dose
    step) whose parent is missing; a record whose number of saves in the audit log (``create``
    and ``update`` events) differs from its ``version`` (a version without its audit row, or an
    audit row without its version); a summary that is not the core's summary of the stored
    record (a record saved without its summary).
    """
    from trdnav.knowledge.load import default_knowledge
    from trdnav.storage import records, repository
    from trdnav.storage.engine import make_engine, make_sessionmaker

    out = StoreCheck(acknowledged=len(acknowledged))
    engine = make_engine(db.url)
    try:
        with engine.connect() as conn:
            out.integrity = _integrity(conn, db.kind)
            conn.commit()
            patients = conn.execute(text("SELECT id, external_id, version FROM patients")).all()
            saves = dict(
                conn.execute(
                    text(
                        "SELECT entity_id, count(*) FROM audit_events WHERE entity = 'patient' "
                        "AND action IN ('create', 'update') GROUP BY entity_id"
                    )
                ).all()
            )
            for row_id, pid, version in patients:
                out.versions[pid] = int(version)
                if saves.get(pid, 0) != version:
                    out.half_applied.append(
                        f"{pid}: version {version} but {saves.get(pid, 0)} saves audited"
                    )
                for table in ("episodes", "patient_summaries"):
                    n = conn.execute(
                        text(f"SELECT count(*) FROM {table} WHERE patient_id = :p"),  # noqa: S608
                        {"p": row_id},
                    ).scalar()
                    if n != 1:
                        out.half_applied.append(f"{pid}: {n} rows in {table}")
            for table in _CHILDREN:
                orphans = conn.execute(
                    text(
                        f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "  # noqa: S608
                        "(SELECT 1 FROM patients p WHERE p.id = t.patient_id)"
                    )
                ).scalar()
                if orphans:
                    out.half_applied.append(f"{orphans} orphan rows in {table}")
            orphans = conn.execute(
                text(
                    "SELECT count(*) FROM dose_steps d WHERE NOT EXISTS "
                    "(SELECT 1 FROM treatments t WHERE t.id = d.treatment_id)"
                )
            ).scalar()
            if orphans:
                out.half_applied.append(f"{orphans} orphan dose steps")
            for pid, note in conn.execute(
                text(
                    "SELECT p.external_id, c.note FROM current_medications c "
                    "JOIN patients p ON p.id = c.patient_id"
                )
            ):
                if note and MARKER.match(note):
                    out.markers[f"{pid}/{note}"] += 1
        kb = kb or default_knowledge()
        today = date.fromisoformat(TODAY)
        if check_summaries:
            with make_sessionmaker(engine)() as session:
                for pid in out.versions:
                    history = repository.load_history(session, pid, user="check")
                    want = records.summary_values(records.assess_as_of(history, kb, today))
                    row = session.get_one(
                        records.m.PatientSummary, records.patient_row_id(session, pid)
                    )
                    got = {name: getattr(row, name) for name in want}
                    if got != want:
                        differs = sorted(k for k in want if got[k] != want[k])
                        out.half_applied.append(f"{pid}: summary differs in {differs}")
    finally:
        engine.dispose()
    for write in acknowledged:
        if out.markers[f"{write.patient_id}/{write.marker}"] == 0:
            out.lost.append(write)
    out.duplicated = [marker for marker, n in out.markers.items() if n > 1]
    return out
