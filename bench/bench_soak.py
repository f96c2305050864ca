"""Soak: the clinic app under its realistic peak for 10 minutes, over loopback, as a clinic runs it.

Setup: ``trdnav demo`` loads the demo patients (52) and users into a fresh SQLite database, and
``--extra-patients`` (default 100) copies of the demo histories under new ids are added, so edits
spread over 152 records. ``trdnav serve`` then runs in production mode (no ``TRDNAV_DEV``, a random
``TRDNAV_SECRET_KEY``, ``--workers 2``: one per core of the reference machine) on a free port of
127.0.0.1 with the demo's fixed today.

Each of ``--users`` (30) simulated clinicians signs in through the real ``/signin`` form with its
own cookie jar, then, until the time is up, picks an action, does it, and thinks (a pause of
0.5-1.5 × ``--think`` seconds, default 5 s: a busy clinician's pace, so 30 of them make about
5 actions and 10 requests a second) before the next:

- ``list`` (30 %): the patient list;
- ``patient`` (40 %): a patient's page and its chart (the page's image);
- ``edit`` (15 %): opens the add-measurement form of a patient and posts a PHQ-9 with its CSRF
  token and the record's version (303; a 409 when another user saved first is expected, and
  counted apart);
- ``self-report`` (10 %): creates a self-report link (POST, CSRF), opens the link's page, and, as
  the patient (no cookies), opens the questionnaire and submits it;
- ``pdf`` (5 %): the treatment summary PDF.

Reported per endpoint: requests, p50/p95/p99/max latency and errors (any status other than 2xx/3xx,
except the expected 409, and any failed connection or timeout; target 0); requests/s; and the
server's memory: the resident set (RSS) of the server and its workers together, sampled every
``--sample-seconds`` (2 s), at the start and end, its maximum, and its slope (least squares, MB per
minute) over the whole run and over its second half (target: flat). Prints a table, writes the
result as JSON (``--json``, default ``out/bench/soak.json``) and exits 1 if any request failed or
the server died. ``--minutes`` (10) or ``--seconds`` set the length; the suite runs a 10-second
version (tests/faults/test_soak_smoke.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx2
import psutil

HOST = "127.0.0.1"
TODAY = "2024-06-01"
USER = "clinician"
PASSWORD = "demo-clinician-2026"  # noqa: S105 - the demo users' published password
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "out" / "bench" / "soak.json"
START_TIMEOUT = 180.0
REQUEST_TIMEOUT = 60.0
KEEPALIVE_EXPIRY = 2.0  # seconds an idle connection is kept by the client (uvicorn's: 5 s)
SERVER_LOG = ROOT / "out" / "bench" / "soak-server.log"
EXPECTED = {409}  # another user saved the record first: the form says so, nothing is lost
ACTIONS = (("list", 30), ("patient", 40), ("edit", 15), ("self-report", 10), ("pdf", 5))
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_PAGE_CSRF = re.compile(r'data-csrf="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')
_LINK = re.compile(r'id="selfreport-url" type="text" readonly value="([^"]+)"')
_NONCE = re.compile(r'name="form_nonce" value="([^"]+)"')


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Latencies and outcomes per endpoint, from every user thread."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, ms: float, status: int | None, problem: str = "") -> None:
        with self.lock:
            self.latencies.setdefault(endpoint, []).append(ms)
            if status is not None and status in EXPECTED:
                self.expected[endpoint] += 1
            elif status is None or status >= 400:
                self.errors[endpoint] += 1
                if len(self.samples) < 20:
                    self.samples.append(f"{endpoint}: {status or problem}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / spread * 60


class MemorySampler(threading.Thread):
    """The server's RSS (main process and workers) every ``every`` seconds."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.every = every
        self.points: list[tuple[float, float]] = []
        self.per_process: dict[str, float] = {}  # the last sample, MB per process
        self.started = time.monotonic()
        self.halt = threading.Event()

    def sample(self) -> None:
        try:
            tree = [self.process, *self.process.children(recursive=True)]
            total = 0
            per_process = {}
            for p in tree:
                try:
                    rss = p.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                total += rss
                per_process[str(p.pid)] = round(rss / 2**20, 1)
            self.per_process = per_process
        except psutil.NoSuchProcess:
            return
        self.points.append((time.monotonic() - self.started, total / 2**20))

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.sample()


# --- the simulated users -------------------------------------------------------------------------


class Clinician:
    """One signed-in clinician (own cookie jar) and the patient's phone (no cookies)."""

    def __init__(self, url: str, recorder: Recorder, patients: list[str], seed: int) -> None:
        # idle connections are dropped before uvicorn's 5 s keep-alive ends them, as browsers
        # do: reusing one the server is closing at that moment fails the request (ReadError)
        limits = httpx2.Limits(keepalive_expiry=KEEPALIVE_EXPIRY)
        options: dict[str, Any] = {"timeout": REQUEST_TIMEOUT, "follow_redirects": False}
        self.client = httpx2.Client(base_url=url, limits=limits, **options)
        self.phone = httpx2.Client(limits=limits, **options)
        self.recorder = recorder
        self.patients = patients
        self.seed = seed
        self.random = random.Random(seed)
        self.csrf = ""

    def close(self) -> None:
        self.client.close()
        self.phone.close()

    def call(
        self, endpoint: str, method: str, path: str, *, phone: bool = False, **kw: Any
    ) -> httpx2.Response | None:
        client = self.phone if phone else self.client
        started = time.perf_counter()
        try:
            response = client.request(method, path, **kw)
        except httpx2.HTTPError as exc:
            ms = (time.perf_counter() - started) * 1000
            self.recorder.record(endpoint, ms, None, type(exc).__name__)
            return None
        self.recorder.record(endpoint, (time.perf_counter() - started) * 1000, response.status_code)
        if not phone and response.headers.get("content-type", "").startswith("text/html"):
            found = _PAGE_CSRF.search(response.text)
            if found:
                self.csrf = found.group(1)
        return response

    def sign_in(self) -> None:
        form = self.call("signin form", "GET", "/signin")
        token = _CSRF_FIELD.search(form.text) if form is not None else None
        if token is None:
            raise SystemExit("the sign-in page has no CSRF token")
        data = {"username": USER, "password": PASSWORD, "csrf_token": token.group(1)}
        signed = self.call("signin", "POST", "/signin", data=data)
        if signed is None or signed.status_code != 303:
            raise SystemExit(f"sign-in failed: {signed.status_code if signed else 'no answer'}")
        self.call("list", "GET", "/patients")
        if not self.csrf:
            raise SystemExit("the patient list carries no CSRF token (data-csrf)")

    def patient(self) -> str:
        return self.random.choice(self.patients)

    def do_list(self) -> None:
        self.call("list", "GET", "/patients")

    def do_patient(self) -> None:
        pid = self.patient()
        self.call("patient page", "GET", f"/patients/{pid}")
        self.call("chart", "GET", f"/patients/{pid}/chart.svg")

    def do_edit(self) -> None:
        pid = self.patient()
        form = self.call("edit form", "GET", f"/patients/{pid}/measurements/new")
        version = _VERSION.search(form.text) if form is not None else None
        if version is None:
            return
        day = date.fromisoformat(TODAY) - timedelta(days=self.random.randrange(0, 28))
        items = [self.random.randrange(0, 4) for _ in range(8)] + [0]
        data = {
            "instrument": "phq9",
            "date": day.isoformat(),
            "version": version.group(1),
            "csrf_token": self.csrf,
        }
        data |= {f"items[{k}]": str(v) for k, v in enumerate(items)}
        self.call("edit post", "POST", f"/patients/{pid}/measurements/new", data=data)

    def do_self_report(self) -> None:
        pid = self.patient()
        data = {"instrument": "phq9", "hours": "72", "csrf_token": self.csrf}
        created = self.call("self-report create", "POST", f"/patients/{pid}/selfreport", data=data)
        if created is None or created.status_code != 303:
            return
        page = self.call("self-report link page", "GET", created.headers["location"])
        link = _LINK.search(page.text) if page is not None else None
        if link is None:
            self.recorder.record("self-report link page", 0.0, None, "no link on the page")
            return
        url = link.group(1).replace("&amp;", "&")
        form = self.call("self-report form", "GET", url, phone=True)
        nonce = _NONCE.search(form.text) if form is not None else None
        if nonce is None:
            return
        answers = {f"item_{n}": str(self.random.randrange(0, 4)) for n in range(1, 9)}
        answers |= {"item_9": "0", "form_nonce": nonce.group(1)}
        self.call("self-report submit", "POST", url, phone=True, data=answers)

    def do_pdf(self) -> None:
        self.call("pdf", "GET", f"/patients/{self.patient()}/summary.pdf")

    def run(self, until: float, think: float) -> None:
        actions: dict[str, Callable[[], None]] = {
            "list": self.do_list,
            "patient": self.do_patient,
            "edit": self.do_edit,
            "self-report": self.do_self_report,
            "pdf": self.do_pdf,
        }
        names = [name for name, _ in ACTIONS]
        weights = [weight for _, weight in ACTIONS]
        first = names[self.seed % len(names)]  # user n starts with action n: all are exercised
        while time.monotonic() < until:
            actions[first or self.random.choices(names, weights)[0]]()
            first = ""
            pause = think * self.random.uniform(0.5, 1.5)
            time.sleep(max(0.0, min(pause, until - time.monotonic())))


# --- the server ----------------------------------------------------------------------------------


def trdnav_command() -> list[str]:
    script = Path(sys.executable).with_name("trdnav")
    return [str(script)] if script.exists() else [sys.executable, "-m", "trdnav"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def prepare_database(url: str, extra: int) -> list[str]:
    """The demo, plus ``extra`` copies of its histories under new ids; every patient id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDNAV_")}
    demo = [*trdnav_command(), "demo", "--database-url", url, "--today", TODAY]
    subprocess.run(demo, env=env, check=True, capture_output=True, timeout=600)  # noqa: S603
    from trdnav.demo import demo_data
    from trdnav.knowledge.load import default_knowledge
    from trdnav.storage import records
    from trdnav.storage.engine import make_engine, make_sessionmaker

    today = date.fromisoformat(TODAY)
    data = demo_data(today)
    ids = [str(d["patient"]["id"]) for d in data]
    kb = default_knowledge()
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            for n in range(extra):
                copy = json.loads(json.dumps(data[n % len(data)], default=str))
                copy["patient"]["id"] = f"SOAK{n + 1:03d}"
                records.save(session, records.validate(copy, kb, today), kb, today, "bench")
                ids.append(copy["patient"]["id"])
    finally:
        engine.dispose()
    return ids


def start_server(
    url: str, workers: int, log: Path, extra_env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRDNAV_")}
    env.update(extra_env)
    env["TRDNAV_SECRET_KEY"] = secrets.token_urlsafe(48)  # production mode: no TRDNAV_DEV
    command = [*trdnav_command(), "serve", "--database-url", url, "--port", str(port)]
    command += ["--today", TODAY, "--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx2.get(base + "/signin", timeout=2).status_code == 200:
                return process, base
        except httpx2.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise SystemExit(f"trdnav serve did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


# --- the run -------------------------------------------------------------------------------------


def summarise(
    recorder: Recorder, seconds: float, points: list[tuple[float, float]], args: argparse.Namespace
) -> dict[str, Any]:
    endpoints = {}
    for name, values in sorted(recorder.latencies.items()):
        endpoints[name] = {
            "requests": len(values),
            "p50_ms": round(percentile(values, 0.50), 1),
            "p95_ms": round(percentile(values, 0.95), 1),
            "p99_ms": round(percentile(values, 0.99), 1),
            "max_ms": round(max(values), 1),
            "errors": recorder.errors[name],
            "expected_409": recorder.expected[name],
        }
    total = sum(e["requests"] for n, e in endpoints.items() if not n.startswith("signin"))
    half = [p for p in points if p[0] >= points[-1][0] / 2] if points else []
    mb = [m for _, m in points]
    return {
        "users": args.users,
        "think_s": args.think,
        "workers": args.workers,
        "patients": args.patients,
        "server_env": args.server_env,
        "seconds": round(seconds, 1),
        "requests": total,
        "requests_per_s": round(total / seconds, 1) if seconds else 0.0,
        "errors": sum(recorder.errors.values()),
        "expected_409": sum(recorder.expected.values()),
        "error_samples": recorder.samples,
        "endpoints": endpoints,
        "rss_mb": {
            "start": round(mb[0], 1) if mb else None,
            "end": round(mb[-1], 1) if mb else None,
            "max": round(max(mb), 1) if mb else None,
            "slope_mb_per_min": round(slope_per_minute(points), 2),
            "slope_second_half_mb_per_min": round(slope_per_minute(half), 2),
            "samples": [[round(t, 1), round(m, 1)] for t, m in points],
        },
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"\nsoak: {result['users']} users, think {result['think_s']} s, "
        f"{result['seconds']} s, {result['patients']} patients, {result['workers']} workers"
    )
    print(f"{'endpoint':<24}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}", end="")
    print(f"{'max ms':>9}{'errors':>8}{'409':>6}")
    for name, e in result["endpoints"].items():
        print(
            f"{name:<24}{e['requests']:>9}{e['p50_ms']:>9}{e['p95_ms']:>9}{e['p99_ms']:>9}", end=""
        )
        print(f"{e['max_ms']:>9}{e['errors']:>8}{e['expected_409']:>6}")
    rss = result["rss_mb"]
    print(
        f"requests {result['requests']} ({result['requests_per_s']}/s), "
        f"errors {result['errors']}, expected 409 {result['expected_409']}"
    )
    print(
        f"server RSS MB: start {rss['start']}, end {rss['end']}, max {rss['max']}, "
        f"slope {rss['slope_mb_per_min']} MB/min "
        f"(second half {rss['slope_second_half_mb_per_min']} MB/min)"
    )
    if rss.get("per_process_end"):
        print(
            f"per process MB at start {rss['per_process_start']}, at end {rss['per_process_end']}"
        )
    for sample in result["error_samples"]:
        print(f"  error: {sample}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--seconds", type=float, help="length of the run (overrides --minutes)")
    parser.add_argument("--users", type=int, default=30, help="concurrent clinicians")
    parser.add_argument("--think", type=float, default=5.0, help="mean pause between actions")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--extra-patients", type=int, default=100, help="copies of the demo")
    parser.add_argument("--sample-seconds", type=float, default=2.0, help="RSS sampling period")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the result goes")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60

    folder = Path(tempfile.mkdtemp(prefix="trdnav-soak-"))
    url = f"sqlite:///{folder / 'soak.db'}"
    try:
        print(f"preparing the database in {folder} ...", flush=True)
        patients = prepare_database(url, args.extra_patients)
        args.patients = len(patients)
        extra_env = dict(item.split("=", 1) for item in args.server_env)
        process, base = start_server(url, args.workers, folder / "server.log", extra_env)
        recorder = Recorder()
        users = [Clinician(base, recorder, patients, seed) for seed in range(args.users)]
        try:
            for user in users:
                user.sign_in()
            sampler = MemorySampler(process.pid, args.sample_seconds)
            sampler.sample()
            start_per_process = dict(sampler.per_process)
            sampler.start()
            print(f"{args.users} users signed in; running {seconds:.0f} s ...", flush=True)
            started = time.monotonic()
            until = started + seconds
            threads = [
                threading.Thread(target=u.run, args=(until, args.think), daemon=True) for u in users
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=seconds + REQUEST_TIMEOUT * 4)
            elapsed = time.monotonic() - started
            sampler.halt.set()
            sampler.join(timeout=10)
            sampler.sample()
            alive = process.poll() is None
        finally:
            for user in users:
                user.close()
            stop_server(process)
            SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / "server.log", SERVER_LOG)  # no patient data: see app.py
        result = summarise(recorder, elapsed, sampler.points, args)
        result["server_alive_at_end"] = alive
        result["rss_mb"]["per_process_start"] = start_per_process
        result["rss_mb"]["per_process_end"] = sampler.per_process
        print_table(result)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
        if not alive:
            print("the server died during the run", file=sys.stderr)
            print((folder / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        return 0 if result["errors"] == 0 and alive else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
