"""Concurrency, long run: 20 clients on one record and 20 on their own records, at once.

For each database (SQLite and PostgreSQL) the real server (``trdnav serve --workers 2``) takes
``--seconds`` (default 60) of edits: half the clients are browsers (session cookie, the form's
CSRF token and version), half API clients (bearer token, If-Match). Each reads the record's
version and adds a medication with a unique marker at that version, as fast as it can.

Prints, per database and group: changes accepted (303/201), refused as stale (409/412), errors
(any other answer, or none within 30 s), write latency p95/max; then lost updates (accepted but
missing), refused changes stored anyway, records whose version is not their accepted changes,
half-applied records and integrity failures — all must be 0 — and how long the clients took to
stop after the end (a deadlock would never stop). Exits 1 if any of them is not 0. The suite
runs 8 s per database (``tests/reliability/test_concurrency.py``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.concurrency import editors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--same", type=int, default=20, help="clients on one record")
    parser.add_argument("--different", type=int, default=20, help="clients on their own")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="trdnav-concurrency-") as tmp:
        for kind in args.databases.split(","):
            report = editors(kind, args.seconds, Path(tmp), args.same, args.different, args.workers)
            for line in report.lines():
                print(line, flush=True)
            for problem in report.problems[:10]:
                print("   ", problem)
            failed |= not report.ok
    print("FAILED" if failed else "ok: no lost update, no deadlock, no error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
