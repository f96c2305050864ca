"""Benchmark: the clinic web app under load, over loopback, on 10,000 patients.

The data set (``bench/web_data.py``: 10,000 patients, 1,000,000 measurements, summaries computed
by the core) is built once and cached under ``out/bench/``; each run works on a fresh copy of it.
The real server (``trdnav serve --workers 2``, fixed ``--today``) is started on a free port of
127.0.0.1, a clinician signs in, and ``wrk`` (``-t2 -c10 -d20s --latency``, ``bench/web_load.lua``)
drives each endpoint with the session cookie:

- the patient list, first page (``/patients``), and searches (``/patients?q=…``);
- patient pages (``/patients/{id}``) of different patients, one after the other;
- the alerts fragment that 50 open patient pages poll (reported, no target);
- the chart (``/patients/{id}/chart.svg``) of different patients (reported, no target).

Target: p95 ≤ 150 ms at 10 concurrent clients for the list, the search and the patient page.
Prints a table with p50/p95/p99, requests/s and the server's CPU time per request (read from
/proc: unlike latency, it does not depend on what else the machine runs); exits 1 if a target is
missed (or a request failed), so that `make bench` makes a regression visible. Every run stops by
itself (wrk's duration, timeouts on everything else); only 127.0.0.1 is used.
`--seconds`, `--connections`, `--only NAME` and `--rebuild` change a run (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import web_data
from trdnav.cli_web import create_user
from trdnav.web.security import SESSION_COOKIE

HOST = "127.0.0.1"
TARGET_P95_MS = 150.0
USER = "bench-clinician"
PASSWORD = "bench-password-not-secret"  # noqa: S105 - a throwaway user of a throwaway copy
LUA = Path(__file__).resolve().parent / "web_load.lua"
RUN_DB = web_data.OUT / "web-run.db"
SERVER_LOG = web_data.OUT / "web-server.log"
WORKERS = int(os.environ.get("TRDNAV_BENCH_WORKERS", "2"))  # one per core of this machine
START_TIMEOUT = 120.0
OPEN_PAGES = 50  # patient pages left open, each polling its alerts (every 20 s in the app)
_RESULT = re.compile(r"^RESULT (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Scenario:
    name: str
    paths: list[str] = field(repr=False)
    target_p95_ms: float | None


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non200: int
    socket_errors: int
    server_cpu_s: float | None  # CPU seconds the server process used during the run

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s * 1000 / self.requests

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        target = self.scenario.target_p95_ms
        healthy = self.non200 == 0 and self.socket_errors == 0 and self.requests > 0
        return healthy and (target is None or self.p95_ms <= target)


def scenarios() -> list[Scenario]:
    rng = random.Random(7)
    ids = [web_data.patient_id(i) for i in range(web_data.N_PATIENTS)]
    rng.shuffle(ids)
    # searches by part of an identifier: 3 digits match 10 patients, 2 digits 100, 1 digit 1,000
    digits = [f"{rng.randrange(10**n):0{n}d}" for n in (1, 2, 3, 4) for _ in range(25)]
    rng.shuffle(digits)
    return [
        Scenario("patient list, first page", ["/patients"], TARGET_P95_MS),
        Scenario("patient list, search", [f"/patients?q={d}" for d in digits], TARGET_P95_MS),
        Scenario(
            "patient page (different patients)", [f"/patients/{i}" for i in ids], TARGET_P95_MS
        ),
        Scenario(
            "alerts poll (50 open patient pages)",
            [f"/patients/{i}/alerts" for i in ids[:OPEN_PAGES]],
            None,
        ),
        Scenario(
            "chart SVG (different patients)",
            [f"/patients/{i}/chart.svg?instrument=phq9&v=1" for i in ids],
            None,
        ),
    ]


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def fresh_copy(source: Path) -> str:
    for stale in (RUN_DB, Path(f"{RUN_DB}-wal"), Path(f"{RUN_DB}-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, RUN_DB)
    return f"sqlite:///{RUN_DB}"


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # production settings: a real secret (not development mode, so templates are not
        # re-read from disk on every render)
        "TRDNAV_SECRET_KEY": secrets.token_urlsafe(48),
        "TRDNAV_IDLE_TIMEOUT_MINUTES": "240",  # the cookie is signed once for the whole run
    }
    env.pop("TRDNAV_DEV", None)
    command = [
        sys.executable,
        "-m",
        "trdnav",
        "serve",
        "--database-url",
        url,
        "--host",
        HOST,
        "--port",
        str(port),
        "--today",
        web_data.TODAY.isoformat(),
        "--workers",
        str(WORKERS),
    ]
    log = SERVER_LOG.open("wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


def request(
    port: int,
    method: str,
    path: str,
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        found = {k.lower(): v for k, v in r.getheaders()}
        # several Set-Cookie headers: keep them all, one per line
        found["set-cookie"] = "\n".join(r.msg.get_all("Set-Cookie") or [])
        return r.status, found, data
    finally:
        conn.close()


def wait_until_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}; see {SERVER_LOG}")
        try:
            if request(port, "GET", "/signin")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server did not answer within {START_TIMEOUT:.0f} s; see {SERVER_LOG}")


def cookies(headers: dict[str, str]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for line in headers.get("set-cookie", "").splitlines():
        jar.load(line)
    return jar


def sign_in(port: int) -> str:
    """Sign in as the bench clinician, as a browser does; returns the Cookie header value."""
    status, headers, page = request(port, "GET", "/signin")
    jar = cookies(headers)
    field = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    if status != 200 or field is None:
        raise SystemExit(f"the sign-in page answered {status} without a form token")
    form_cookie = "; ".join(f"{k}={v.value}" for k, v in jar.items())
    body = urllib.parse.urlencode(
        {"username": USER, "password": PASSWORD, "csrf_token": field.group(1).decode()}
    )
    status, headers, _ = request(
        port,
        "POST",
        "/signin",
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": form_cookie},
    )
    jar = cookies(headers)
    if status != 303 or SESSION_COOKIE not in jar:
        raise SystemExit(f"sign-in failed with status {status}")
    return f"{SESSION_COOKIE}={jar[SESSION_COOKIE].value}"


def check_pages(port: int, cookie: str, first_patient: str) -> None:
    """Each endpoint answers with what it should before it is timed."""
    expect = {
        "/patients": (b"10000 patients", "text/html"),
        "/patients?q=BW0001": (b"10 patients", "text/html"),
        f"/patients/{first_patient}": (b"Next-step plan", "text/html"),
        f"/patients/{first_patient}/chart.svg?instrument=phq9": (b"<svg", "image/svg+xml"),
    }
    for path, (marker, kind) in expect.items():
        status, headers, body = request(port, "GET", path, headers={"Cookie": cookie})
        if status != 200 or marker not in body or not headers["content-type"].startswith(kind):
            raise SystemExit(f"GET {path}: status {status}, expected 200 {kind} with {marker!r}")


# --- load ----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its descendants (the server's worker
    processes) — Linux /proc; None elsewhere."""
    if _stat(pid) is None:
        return None
    family, total = {pid}, 0.0
    stats = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    grew = True
    while grew:
        grew = False
        for child, fields in stats.items():
            if fields is not None and child not in family and int(fields[1]) in family:
                family.add(child)
                grew = True
    for member in family:
        fields = stats.get(member)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_wrk(
    port: int,
    cookie: str,
    scenario: Scenario,
    threads: int,
    connections: int,
    seconds: int,
    server_pid: int,
) -> Result:
    paths_file = web_data.OUT / "web-paths.txt"
    paths_file.write_text("\n".join(scenario.paths) + "\n", encoding="utf-8")
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}",
        "--",
        cookie,
        str(paths_file),
    ]
    cpu_before = cpu_seconds(server_pid)
    done = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    cpu_after = cpu_seconds(server_pid)
    used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    found = _RESULT.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    v = dict(part.split("=", 1) for part in found.group(1).split())
    return Result(
        scenario,
        requests=int(v["requests"]),
        seconds=float(v["seconds"]),
        p50_ms=int(v["p50_us"]) / 1000,
        p95_ms=int(v["p95_us"]) / 1000,
        p99_ms=int(v["p99_us"]) / 1000,
        max_ms=int(v["max_us"]) / 1000,
        non200=int(v["non200"]),
        socket_errors=int(v["socket_errors"]),
        server_cpu_s=used,
    )


def print_table(results: list[Result], connections: int) -> None:
    head = (
        f"{'endpoint':36} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'errors':>6} {'cpu ms':>6}  target p95"
    )
    print(head)
    print("-" * len(head) + "-" * 12)
    for r in results:
        target = r.scenario.target_p95_ms
        verdict = "met" if r.ok else "MISSED"
        shown = f"≤ {target:.0f} ms {verdict}" if target is not None else "(none)"
        if target is None and not r.ok:
            shown += " FAILED REQUESTS"
        cpu = f"{r.cpu_ms_per_request:6.1f}" if r.cpu_ms_per_request is not None else "     -"
        print(
            f"{r.scenario.name:36} {r.rate:7.1f} {r.p50_ms:7.1f} {r.p95_ms:7.1f} {r.p99_ms:7.1f} "
            f"{r.max_ms:7.0f} {r.non200 + r.socket_errors:6d} {cpu}  {shown}"
        )
    print(
        f"({connections} concurrent connections over loopback, one server process; cpu ms = the "
        "server's CPU time per request, which does not depend on what else the machine runs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="wrk duration per endpoint")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="run only endpoints whose name contains this")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data set")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_web needs wrk (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 1

    ds = web_data.ensure_dataset(rebuild=args.rebuild)
    how = (
        "from the cache"
        if ds.built_in_seconds is None
        else f"built in {ds.built_in_seconds:.1f} s (2 processes)"
    )
    print(f"data set: {ds.patients:,} patients, {ds.measurements:,} measurements, {how}")
    url = fresh_copy(ds.path)
    load_before = os.getloadavg()[0]
    create_user(url, USER, "clinician", PASSWORD)
    port = free_port()
    server = start_server(url, port)
    results: list[Result] = []
    try:
        wait_until_ready(server, port)
        cookie = sign_in(port)
        check_pages(port, cookie, web_data.patient_id(1))
        for scenario in scenarios():
            if args.only and args.only not in scenario.name:
                continue
            results.append(
                run_wrk(
                    port, cookie, scenario, args.threads, args.connections, args.seconds, server.pid
                )
            )
    finally:
        stop_server(server)
    print_table(results, args.connections)
    before, after = load_before, os.getloadavg()[0]
    print(
        f"machine load average (1 min) {before:.1f} before, {after:.1f} after, on "
        f"{os.cpu_count()} CPUs: wrk and anything else running share them with the server"
    )
    missed = [r.scenario.name for r in results if not r.ok]
    if missed:
        print(f"MISSED: {', '.join(missed)} (server log: {SERVER_LOG})")
        return 1
    print(f"targets met: p95 ≤ {TARGET_P95_MS:.0f} ms for the list, the search and patient pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
