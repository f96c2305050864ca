"""Benchmark: the CDS Hooks ``patient-view`` service with a 200-resource prefetch, over loopback.

The standalone service (``trdnav.interop.cdshooks.app:app_from_env``, what ``trdnav cds serve``
runs; uvicorn, ``--workers`` processes — 2 by default, one per core of this machine — sharing one
SQLite jti store, fixed ``today``) is started on a free port of 127.0.0.1; the EHR's JWK Set is
served by a small HTTP server in this process on another loopback port. Every request carries a
freshly signed ES384 JWT (``--alg RS384``: RS384; signed before the clock starts; each ``jti`` used
once) and a prefetch of 200 FHIR R4 resources (Patient, Conditions, MedicationRequests,
MedicationDispenses, PHQ-9 Observations by item and total, labs) of one of ``--patients``
generated patients. Each worker keeps its own memo, so a record's first request on each worker
is a cold one (it shows in the "warm, 1 client" p99 with 2 workers).

Phases (each bounded in requests and time; the run stops by itself):

- ``cold, 1 client``: distinct records one after the other — the full FHIR import and assessment
  per request, without queueing;
- ``cold, 20 clients``: distinct records, 20 at once — the same work under load;
- ``warm, 1 client``: the records again, one after the other — the service memoises import +
  assessment by the record's content (as when an EHR re-opens a chart or re-fires order-select
  with the same record): the time of one request without queueing;
- ``warm, 20 clients``: the same, 20 clients at once (closed loop, no think time) for
  ``--seconds``: throughput at saturation, and latency including the wait in the queue. Driven
  by ``wrk`` when installed (each thread with its own signed tokens), else by the asyncio client
  of this file (``--python-client``).

Prints p50/p99 latency and throughput per phase. Target: warm p99 ≤ 50 ms at 20 concurrent
clients; exits 1 if it is missed or any request failed. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

HOST = "127.0.0.1"
TARGET_P99_MS = 50.0
TODAY = date(2024, 6, 1)
ISSUER = "https://ehr.bench.example"
SERVICE = "trdnav-patient-view"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 120.0
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
PHQ9 = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3"]
PHQ9 += ["44260-8"]
DRUGS = [  # (rxnorm ingredient, name, adequate daily mg)
    ("36437", "sertraline", 150),
    ("321988", "escitalopram", 20),
    ("4493", "fluoxetine", 40),
    ("39786", "venlafaxine", 225),
    ("72625", "duloxetine", 60),
    ("42347", "bupropion", 300),
    ("15996", "mirtazapine", 45),
]
# the EHR's signing keys; --alg chooses (CDS Hooks names ES384 and RS384)
KEYS: dict[str, ECKey | RSAKey] = {
    "ES384": ECKey.generate_key("P-384", parameters={"kid": "bench-ec", "alg": "ES384"}),
    "RS384": RSAKey.generate_key(2048, parameters={"kid": "bench-rsa", "alg": "RS384"}),
}
ALG = "ES384"


# --- data: one patient's record, 200 resources -------------------------------------------------


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def record(n: int) -> dict[str, Any]:
    """The prefetch of patient ``n``: exactly 200 resources."""
    rng = random.Random(n)
    pid = f"bench-{n}"
    onset = TODAY - timedelta(days=rng.randrange(500, 800))
    res: list[dict[str, Any]] = []
    conditions = [
        ("F33.2", onset),
        ("I10", onset - timedelta(days=900)),
        ("F41.1", onset - timedelta(days=300)),
        ("E78.5", onset - timedelta(days=1200)),
        ("G47.00", onset - timedelta(days=100)),
    ]
    for i, (code, when) in enumerate(conditions):
        res.append(
            {
                "resourceType": "Condition",
                "id": f"{pid}-c{i}",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "code": {"coding": [{"system": ICD10, "code": code}]},
                "subject": _ref(pid),
                "onsetDateTime": when.isoformat(),
            }
        )
    day = onset + timedelta(days=10)
    drugs = rng.sample(DRUGS, 4)
    for t, (rx, name, mg) in enumerate(drugs):
        current = t == len(drugs) - 1
        months = 4 if not current else max(1, (TODAY - day).days // 30 - 1)
        months = min(months, 6)
        for m in range(6):  # one order a month (the last drug: active)
            when = day + timedelta(days=30 * m)
            dose = mg if m else mg / 2
            res.append(
                {
                    "resourceType": "MedicationRequest",
                    "id": f"{pid}-mr{t}-{m}",
                    "status": "active" if current and m == 5 else "completed",
                    "intent": "order",
                    "subject": _ref(pid),
                    "medicationCodeableConcept": {
                        "coding": [{"system": RXNORM, "code": rx, "display": name}],
                        "text": name,
                    },
                    "authoredOn": when.isoformat(),
                    "dosageInstruction": [
                        {
                            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                            "doseAndRate": [
                                {"doseQuantity": {"value": dose, "unit": "mg", "code": "mg"}}
                            ],
                        }
                    ],
                    "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "d"}},
                }
            )
            res.append(
                {
                    "resourceType": "MedicationDispense",
                    "id": f"{pid}-md{t}-{m}",
                    "status": "completed",
                    "subject": _ref(pid),
                    "medicationCodeableConcept": {
                        "coding": [{"system": RXNORM, "code": rx, "display": name}]
                    },
                    "whenHandedOver": when.isoformat(),
                    "daysSupply": {"value": 30, "unit": "d"},
                }
            )
        day += timedelta(days=30 * months + 14)
    obs_day = onset + timedelta(days=7)
    k = 0
    while len(res) < 196:
        items = [rng.randrange(1, 4) for _ in range(8)] + [rng.choice((0, 0, 0, 1))]
        for i, code in enumerate(PHQ9):
            res.append(
                {
                    "resourceType": "Observation",
                    "id": f"{pid}-o{k}-{i}",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "subject": _ref(pid),
                    "effectiveDateTime": obs_day.isoformat(),
                    "valueInteger": items[i],
                }
            )
        res.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-o{k}-t",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "44261-6"}]},
                "subject": _ref(pid),
                "effectiveDateTime": obs_day.isoformat(),
                "valueQuantity": {"value": sum(items), "unit": "{score}"},
            }
        )
        obs_day += timedelta(days=28)
        k += 1
    res = res[:196]
    for i, (code, value, unit) in enumerate(
        [("3016-3", 2.1, "m[IU]/L"), ("2132-9", 420, "pg/mL"), ("1989-3", 32, "ng/mL")]
    ):
        res.append(
            {
                "resourceType": "Observation",
                "id": f"{pid}-lab{i}",
                "status": "final",
                "category": [{"coding": [{"code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "subject": _ref(pid),
                "effectiveDateTime": (TODAY - timedelta(days=40)).isoformat(),
                "valueQuantity": {"value": value, "unit": unit},
            }
        )
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "gender": rng.choice(("female", "male")),
        "birthDate": f"{rng.randrange(1950, 2000)}-0{rng.randrange(1, 10)}-1{rng.randrange(0, 9)}",
    }
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in res:
        by_kind.setdefault(r["resourceType"], []).append(r)

    def bundle(kind: str) -> dict[str, Any]:
        found = by_kind.get(kind, [])
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "entry": [{"resource": r} for r in found],
        }

    prefetch = {
        "patient": patient,
        "conditions": bundle("Condition"),
        "medicationRequests": bundle("MedicationRequest"),
        "medicationStatements": bundle("MedicationStatement"),
        "medicationDispenses": bundle("MedicationDispense"),
        "observations": bundle("Observation"),
    }
    total = 1 + len(res)
    if total != 200:
        raise SystemExit(f"generated {total} resources, not 200")
    return prefetch


def body_of(n: int, prefetch: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "hook": "patient-view",
            "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/bench", "patientId": f"bench-{n}"},
            "prefetch": prefetch,
        }
    ).encode()


# --- the EHR's JWK Set, and the service --------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def serve_jwks() -> tuple[ThreadingHTTPServer, str]:
    data = json.dumps(KeySet(list(KEYS.values())).as_dict(private=False)).encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}/jwks.json"


def start_service(port: int, jwks_url: str, workdir: Path, workers: int) -> subprocess.Popen[bytes]:
    config = workdir / "cds.json"
    config.write_text(
        json.dumps(
            {
                "base_url": f"http://{HOST}:{port}",
                "issuers": [{"iss": ISSUER, "jwks_url": jwks_url}],
                "today": TODAY.isoformat(),
                "max_body_bytes": 20_000_000,
                # the workers share the spent jtis (as `trdnav cds serve --workers N` does)
                "replay_store": str(workdir / "jti.sqlite") if workers > 1 else None,
            }
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "TRDNAV_CDS_CONFIG": str(config)}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "trdnav.interop.cdshooks.app:app_from_env",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    log = (workdir / "server.log").open("wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def wait_until_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the service exited while starting")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the service did not start in time")


def stop_service(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


# --- the load ---------------------------------------------------------------------------------


class Tokens:
    """JWTs signed up front: each ``jti`` is used once (the service refuses replays)."""

    def __init__(self, aud: str, count: int) -> None:
        now = int(time.time())
        key = KEYS[ALG]
        header = {"alg": ALG, "typ": "JWT", "kid": key.kid}
        self._tokens = [
            jwt.encode(
                header,
                {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 900, "jti": uuid.uuid4().hex},
                key,
                algorithms=[ALG],
            )
            for _ in range(count)
        ]

    def take(self) -> str | None:
        return self._tokens.pop() if self._tokens else None


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str, body: bytes
) -> int:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    payload = await reader.readexactly(length)
    if status == 200 and not json.loads(payload)["cards"]:
        return 599  # a 200 without cards is a failure for this record
    return status


async def _client(
    port: int,
    jobs: list[tuple[int, bytes]],
    tokens: Tokens,
    deadline: float,
    max_requests: int | None,
    out: list[float],
    failures: list[int],
    counter: list[int],
    offset: int,
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    path = f"/cds-services/{SERVICE}"
    i = offset
    try:
        while time.monotonic() < deadline:
            if max_requests is not None:
                if counter[0] >= max_requests:
                    break
                counter[0] += 1
            token = tokens.take()
            if token is None:
                break
            _n, body = jobs[i % len(jobs)]
            i += 1
            started = time.perf_counter()
            status = await asyncio.wait_for(
                _one(reader, writer, path, token, body), REQUEST_TIMEOUT
            )
            out.append((time.perf_counter() - started) * 1000)
            if status != 200:
                failures.append(status)
    finally:
        writer.close()


def run_phase(
    port: int,
    jobs: list[tuple[int, bytes]],
    tokens: Tokens,
    clients: int,
    seconds: float,
    max_requests: int | None,
) -> dict[str, float]:
    latencies: list[float] = []
    failures: list[int] = []
    counter = [0]
    started = time.monotonic()
    deadline = started + seconds

    async def main() -> None:
        step = max(1, len(jobs) // clients)
        await asyncio.gather(
            *(
                _client(
                    port,
                    jobs,
                    tokens,
                    deadline,
                    max_requests,
                    latencies,
                    failures,
                    counter,
                    c * step,
                )
                for c in range(clients)
            )
        )

    asyncio.run(main())
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {
        "requests": len(latencies),
        "failures": len(failures),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50": pct(50),
        "p99": pct(99),
        "max": latencies[-1] if latencies else float("nan"),
    }


# wrk drives the warm 20-client phase when it is installed (apt-get install wrk): a C client
# leaves the second core to the server, where the Python client above would share it.
LUA = r"""
local tokens, bodies, path = {}, {}, "/cds-services/trdnav-patient-view"
local threads, next_thread, position, next_token, non200 = {}, 0, 1, 1, 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
  threads[#threads + 1] = thread
end
function init(args)
  for line in io.lines(args[1] .. "." .. thread_index) do tokens[#tokens + 1] = line end
  for line in io.lines(args[2]) do bodies[#bodies + 1] = line end
  position = (thread_index * 7) % #bodies + 1
end
function request()
  local token = tokens[next_token]
  next_token = next_token % #tokens + 1
  local body = bodies[position]
  position = position % #bodies + 1
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, body)
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"cards":[]', 1, true) then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("non200") or 0) end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f p50_us=%d p99_us=%d max_us=%d bad=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(99), latency.max, bad + e.connect + e.read + e.write + e.timeout))
end
"""
WRK_THREADS = 2
WRK_MAX_RPS = 1500  # tokens signed per second of the run: more requests would replay a jti


def run_wrk(
    port: int, jobs: list[tuple[int, bytes]], clients: int, seconds: float, workdir: Path
) -> dict[str, float]:
    script = workdir / "cds_load.lua"
    script.write_text(LUA, encoding="utf-8")
    bodies = workdir / "bodies.jsonl"
    bodies.write_bytes(b"\n".join(body for _, body in jobs) + b"\n")
    aud = f"http://{HOST}:{port}/cds-services/{SERVICE}"
    per_thread = int(WRK_MAX_RPS * seconds / WRK_THREADS) + 1
    for t in range(WRK_THREADS):
        tokens = Tokens(aud, per_thread)
        (workdir / f"tokens.{t}").write_text("\n".join(tokens._tokens) + "\n", encoding="utf-8")
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{clients}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://{HOST}:{port}",
        "--",
        str(workdir / "tokens"),
        str(bodies),
    ]
    done = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    found = re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    v = dict(part.split("=", 1) for part in found.group(1).split())
    requests = int(v["requests"])
    if requests > per_thread * WRK_THREADS:
        raise SystemExit("wrk sent more requests than tokens were signed: raise WRK_MAX_RPS")
    return {
        "requests": requests,
        "failures": int(v["bad"]),
        "seconds": float(v["seconds"]),
        "rps": requests / float(v["seconds"]),
        "p50": int(v["p50_us"]) / 1000,
        "p99": int(v["p99_us"]) / 1000,
        "max": int(v["max_us"]) / 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="warm phase duration")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--patients", type=int, default=40, help="distinct records (warm set)")
    parser.add_argument("--cold", type=int, default=40, help="requests of each cold phase")
    parser.add_argument(
        "--python-client", action="store_true", help="drive the warm phase from Python, not wrk"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="service processes (one per core of this machine; each its own memo, one shared jti "
        "store)",
    )
    parser.add_argument(
        "--alg", choices=sorted(KEYS), default="ES384", help="the EHR's JWT signature algorithm"
    )
    args = parser.parse_args()
    global ALG
    ALG = args.alg
    print(f"building records… (JWTs signed {ALG})", flush=True)
    distinct = args.patients + 2 * args.cold
    records = [record(n) for n in range(distinct)]
    size = sum(len(json.dumps(r)) for r in records) / len(records)
    print(f"{distinct} records of 200 resources, {size / 1000:.0f} kB of prefetch each")
    jwks_server, jwks_url = serve_jwks()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_service(port, jwks_url, Path(tmp), args.workers)
        try:
            wait_until_ready(server, port)
            aud = f"http://{HOST}:{port}/cds-services/{SERVICE}"
            expected = int(args.seconds * 600) + 2 * args.cold + args.patients + 300
            tokens = Tokens(aud, expected)
            jobs = [(n, body_of(n, records[n])) for n in range(distinct)]
            warm_set = jobs[: args.patients]
            cold_one = jobs[args.patients : args.patients + args.cold]
            cold_many = jobs[args.patients + args.cold :]
            results = {}
            results["cold, 1 client"] = run_phase(port, cold_one, tokens, 1, 300, args.cold)
            results[f"cold, {args.clients} clients"] = run_phase(
                port, cold_many, tokens, args.clients, 300, args.cold
            )
            for _ in range(args.workers):  # fill the memo (of every process)
                run_phase(port, warm_set, tokens, 4, 300, len(warm_set))
            results["warm, 1 client"] = run_phase(port, warm_set, tokens, 1, 60, 200)
            warm_name = f"warm, {args.clients} clients"
            if shutil.which("wrk") is not None and not args.python_client:
                warm_name += " (wrk)"
                results[warm_name] = run_wrk(port, warm_set, args.clients, args.seconds, Path(tmp))
            else:
                warm_name += " (Python)"
                results[warm_name] = run_phase(
                    port, warm_set, tokens, args.clients, args.seconds, None
                )
        finally:
            stop_service(server)
            jwks_server.shutdown()
            jwks_server.server_close()
            if server.returncode not in (0, -15, None):
                print((Path(tmp) / "server.log").read_text(encoding="utf-8")[-3000:])
    print()
    print(f"{'phase':<27} {'requests':>8} {'fail':>5} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in results.items():
        print(
            f"{name:<27} {r['requests']:>8.0f} {r['failures']:>5.0f} {r['rps']:>7.1f} "
            f"{r['p50']:>8.1f} {r['p99']:>8.1f}"
        )
    warm = results[warm_name]
    failed = sum(r["failures"] for r in results.values())
    ok = warm["p99"] <= TARGET_P99_MS and failed == 0 and warm["requests"] > 0
    print()
    print(
        f"target: warm p99 ≤ {TARGET_P99_MS:g} ms at {args.clients} clients — "
        f"{'met' if ok else 'MISSED'} (p99 {warm['p99']:.1f} ms, {failed} failed requests)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
