"""Oversize bodies are refused with 413 before they are read whole (``web/body_limits.py``).

In process (TestClient) for each kind of body — API JSON, a signed-in form, the public
self-report form, the FHIR upload form — declared (``Content-Length``) and streamed (chunked, no
length); then against the real server (``trdnav serve`` on loopback) with a raw socket: a 50 MB
body declared but never sent is answered at once, and a 50 MB chunked body is answered 413 while
the client is still sending, the server's memory staying flat.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.web.test_roles import World, build_world, make_app
from tests.web.test_security import database_rows
from trdnav.cli import app as cli_app
from trdnav.cli_web import create_user
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import upgrade
from trdnav.web import body_limits
from trdnav.web.body_limits import DEFAULT_LIMIT

MB = 1_000_000
EXAMPLES = Path(__file__).parents[2] / "examples"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def world(db_url: str, kb: Knowledge) -> Iterator[World]:
    app = make_app(db_url, kb)
    try:
        yield build_world(app, db_url, kb)
    finally:
        app.state.engine.dispose()


def _chunks(total: int, piece: bytes = b"x" * 65_536, head: bytes = b"") -> Iterator[bytes]:
    yield head
    for _ in range(total // len(piece)):
        yield piece


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 413, response.text[:300]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "problems"}
    error: dict[str, Any] = body["error"]
    return error


@sqlite_only
@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "chunked"])
def test_an_api_body_above_the_limit_is_refused_in_the_error_shape_and_changes_nothing(
    world: World, streamed: bool
) -> None:
    app: FastAPI = world.app
    pid = world.samples["patient_id"]
    before = database_rows(app.state.engine, without=frozenset({"audit_events"}))
    headers = {
        "Authorization": f"Bearer {world.api_tokens['clinician']}",
        "Content-Type": "application/json",
        "If-Match": '"1"',
    }
    size = DEFAULT_LIMIT + 100_000
    body: Any = _chunks(size, head=b'{"pad": "') if streamed else b" " * size
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.put(f"/api/patients/{pid}", content=body, headers=headers)
    error = _error(response)
    assert error["code"] == "http_413"
    assert "above the limit of 2 MiB" in error["message"]
    assert database_rows(app.state.engine, without=frozenset({"audit_events"})) == before


@sqlite_only
def test_a_body_under_the_limit_is_read_as_before(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.api_tokens['clinician']}"}
    with TestClient(world.app, raise_server_exceptions=False) as client:
        pid = world.samples["patient_id"]
        got = client.get(f"/api/patients/{pid}", headers=headers)
        history = got.json()["history"] if "history" in got.json() else got.json()
        put = client.put(
            f"/api/patients/{pid}",
            content=json.dumps(history).encode() + b" " * (DEFAULT_LIMIT // 2),
            headers={
                **headers,
                "If-Match": got.headers["etag"],
                "Content-Type": "application/json",
            },
        )
    assert put.status_code != 413, put.text[:300]
    assert put.status_code < 500


@sqlite_only
@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "chunked"])
def test_the_public_self_report_form_refuses_an_oversize_post_with_the_error_page(
    world: World, streamed: bool
) -> None:
    size = DEFAULT_LIMIT + 100_000
    body: Any = _chunks(size, head=b"q1=") if streamed else b"q1=" + b"x" * size
    with TestClient(world.app, raise_server_exceptions=False) as client:
        response = client.post(
            f"/r/{world.samples['token']}",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "above the limit of 2 MiB" in response.text
    assert "Traceback" not in response.text


@sqlite_only
def test_a_signed_in_form_post_streamed_above_the_limit_is_refused(world: World) -> None:
    from trdnav.web.security import SESSION_COOKIE

    cookie, csrf = world.session_cookie("clinician")
    with TestClient(world.app, raise_server_exceptions=False) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        response = client.post(
            "/patients/new",
            content=_chunks(DEFAULT_LIMIT + 100_000, head=f"csrf_token={csrf}&note=".encode()),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413, response.text[:300]


@sqlite_only
def test_the_fhir_upload_form_streamed_above_its_limit_is_cut_off(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trdnav.web.security import SESSION_COOKIE

    monkeypatch.setattr(body_limits, "LIMITS", (("/fhir/import", 200_000),))
    cookie, csrf = world.session_cookie("clinician")
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="bundle"; '
        'filename="big.json"\r\nContent-Type: application/json\r\n\r\n'
    ).encode()
    with TestClient(world.app, raise_server_exceptions=False) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        response = client.post(
            "/fhir/import",
            content=_chunks(1_000_000, head=head),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 413, response.text[:300]


def test_each_address_has_its_limit() -> None:
    assert body_limits.limit_for("/api/patients/EX1") == DEFAULT_LIMIT
    assert body_limits.limit_for("/r/abc") == DEFAULT_LIMIT
    fhir = body_limits.limit_for("/api/fhir/import")
    assert fhir is not None and fhir > DEFAULT_LIMIT
    assert body_limits.limit_for("/cds-services/trdnav-patient-view") is None  # its own limit


# --- the real server -------------------------------------------------------------------------


@dataclass
class Served:
    port: int
    pid: int
    token: str
    patient: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, kb: Knowledge) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("body-limits")
    url = f"sqlite:///{folder / 'trdnav.db'}"
    upgrade(url)
    create_user(url, "clinician", "clinician", "body-limits-password-2026")
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db:
        history = load_history(next(EXAMPLES.glob("10*.yaml")), kb, date(2024, 6, 1))
        patient = records.save(db, history, kb, date(2024, 6, 1), "fixture")
    engine.dispose()
    made = CliRunner().invoke(cli_app, ["user", "token", "clinician", "--database-url", url])
    token = made.output.strip().splitlines()[-1]
    port = _free_port()
    command = [str(Path(__import__("sys").executable).with_name("trdnav")), "serve"]
    command += ["--port", str(port), "--database-url", url, "--dev", "--today", "2024-06-01"]
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError((folder / "server.log").read_text())
        yield Served(port, process.pid, token, patient)
    finally:
        process.terminate()
        process.wait(timeout=20)


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def _read_answer(s: socket.socket) -> bytes:
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            got = s.recv(65_536)
            if not got:
                break
            data += got
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def test_the_real_server_answers_a_declared_50_mb_body_at_once_without_waiting_for_it(
    served: Served,
) -> None:
    headers = {
        "Authorization": f"Bearer {served.token}",
        "Content-Type": "application/json",
        "Content-Length": str(50 * MB),
    }
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
        started = time.perf_counter()
        s.sendall(_head("PUT", f"/api/patients/{served.patient}", headers))  # and no body at all
        answer = _read_answer(s)
    assert _status(answer) == 413, answer[:300]
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/api/patients/{patient}", "application/json"),
        ("/r/x", "application/x-www-form-urlencoded"),
    ],
    ids=["api", "public form"],
)
def test_the_real_server_refuses_a_chunked_50_mb_body_while_it_is_still_being_sent(
    served: Served, path: str, media: str
) -> None:
    headers = {
        "Authorization": f"Bearer {served.token}",
        "Content-Type": media,
        "Transfer-Encoding": "chunked",
        "If-Match": '"1"',
    }
    # form fields of 4 kB: Starlette itself refuses one field above 1 MB (400)
    piece = b"x" * 65_536 if "api" in path else (b"&a=" + b"x" * 4_093) * 16
    frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    rss_before = _rss(served.pid)
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as s:
        s.sendall(
            _head("PUT" if "api" in path else "POST", path.format(patient=served.patient), headers)
        )
        while sent < 50 * MB:
            if select.select([s], [], [], 0)[0]:
                break  # the server answered before the body was all sent
            try:
                s.sendall(frame)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(piece)
        answer = _read_answer(s)
    grew = _rss(served.pid) - rss_before
    print(  # noqa: T201 - the figure quoted in docs/reliability.md
        f"\n{path}: answered after {sent / MB:.1f} MB of 50 MB sent; server RSS +{grew / MB:.1f} MB"
    )
    assert _status(answer) == 413, answer[:300]
    assert sent < 20 * MB  # the limit (2 MiB) plus what the loopback's socket buffers hold
    assert grew < 20 * MB


@sqlite_only
def test_a_route_with_form_parameters_refuses_a_streamed_oversize_body(world: World) -> None:
    # /signin reads its fields with FastAPI's Form(): its own body parsing passes the 413 through
    with TestClient(world.app, raise_server_exceptions=False) as client:
        response = client.post(
            "/signin",
            content=_chunks(DEFAULT_LIMIT + 100_000, head=b"username=a&password="),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413
    assert "above the limit of 2 MiB" in response.text
