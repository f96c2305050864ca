"""The real server for the fault tests: ``trdnav serve`` as a subprocess on a free loopback port.

``running_server(url, tmp)`` starts it over an already migrated and seeded database and stops it
after; ``Clinic`` is a signed-in clinician's HTTP client (signed in through the real /signin
form, so it keeps working whatever the session store is).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import create_engine, text

from trdnav.cli_web import create_user
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker

HOST = "127.0.0.1"
TODAY = "2024-06-01"
PASSWORD = "fault-tests-password-2026"  # a throwaway user of a throwaway database
PATIENT = "EX10"
STARTUP_SECONDS = 60.0
EXAMPLES = Path(__file__).parents[2] / "examples"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PAGE_CSRF = re.compile(r'data-csrf="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')


def trdnav_command() -> list[str]:
    script = Path(sys.executable).with_name("trdnav")
    return [str(script)] if script.exists() else [sys.executable, "-m", "trdnav"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDNAV_")}
    env["TRDNAV_DEV"] = "1"
    return env


def seed(url: str, kb: Knowledge) -> None:
    """A clinician and one example patient (EX10) in the migrated database at ``url``."""
    from datetime import date

    create_user(url, "clinician", "clinician", PASSWORD)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            path = next(EXAMPLES.glob(f"{PATIENT[2:]}*.yaml"))
            history = load_history(path, kb, date.fromisoformat(TODAY))
            records.save(session, history, kb, date.fromisoformat(TODAY), "fixture")
    finally:
        engine.dispose()


@contextmanager
def pg_admin() -> Iterator[Any]:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def pg_database(template: str) -> tuple[str, str]:
    """A new PostgreSQL database copied from ``template``: (name, URL)."""
    name = f"{template}_fault_{uuid.uuid4().hex[:8]}"
    with pg_admin() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def terminate_backends(name: str) -> int:
    """End every session on database ``name`` (what a server restart does to the app's
    connections); returns how many were ended."""
    with pg_admin() as conn:
        ended = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()) AS t"
            ),
            {"name": name},
        ).scalar_one()
    return int(ended)


def allow_connections(name: str, allowed: bool) -> None:
    with pg_admin() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url + "/signin", timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


@contextmanager
def running_server(
    database_url: str, folder: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    log = folder / f"server-{port}.log"
    command = [*trdnav_command(), "serve", "--database-url", database_url]
    command += ["--port", str(port), "--today", TODAY]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env={**server_env(), **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(f"http://{HOST}:{port}", log, process)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"trdnav serve did not answer (exit {process.poll()}):\n{server.log_text()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class Clinic:
    """A clinician signed in to ``server`` through the /signin form."""

    def __init__(self, server: Server, timeout: float = 30.0) -> None:
        self.client = httpx2.Client(base_url=server.url, timeout=timeout, follow_redirects=False)
        form = self.client.get("/signin")
        token = _CSRF.search(form.text)
        assert token is not None, form.text
        data = {"username": "clinician", "password": PASSWORD, "csrf_token": token.group(1)}
        signed = self.client.post("/signin", data=data)
        assert signed.status_code == 303, signed.text
        page = self.client.get("/patients")
        csrf = _PAGE_CSRF.search(page.text)
        assert csrf is not None, page.text
        self.csrf = csrf.group(1)

    def close(self) -> None:
        self.client.close()

    def measurement_form(self) -> dict[str, str]:
        """The fields of a PHQ-9 added to EX10 through its form, at the record's version."""
        page = self.client.get(f"/patients/{PATIENT}/measurements/new")
        version = _VERSION.search(page.text)
        assert version is not None, page.text
        entered = {"instrument": "phq9", "date": "2024-05-30", "version": version.group(1)}
        entered |= {f"items[{k}]": str(v) for k, v in enumerate((1, 1, 2, 1, 0, 1, 1, 0, 0))}
        return {**entered, "csrf_token": self.csrf}

    def add_measurement(self, form: dict[str, str] | None = None) -> httpx2.Response:
        data = form or self.measurement_form()
        return self.client.post(f"/patients/{PATIENT}/measurements/new", data=data)

    def api_add_lab(self) -> httpx2.Response:
        lab = {"test": "TSH", "value": 2.5, "unit": "mIU/L", "date": "2024-05-20"}
        return self.client.post(
            f"/api/patients/{PATIENT}/labs", json=lab, headers={"X-CSRF-Token": self.csrf}
        )
