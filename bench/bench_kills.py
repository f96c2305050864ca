"""Crash safety, long run: SIGKILL the server under writes, and `trdnav import` / `restore` midway.

For each database (SQLite in WAL mode and PostgreSQL):

- the real server (``trdnav serve``) is killed with SIGKILL ``--kills`` times (default 50) while
  browsers (forms, session + CSRF) and API clients (bearer token) add medications with unique
  markers; after each kill the database is checked with the server down: every acknowledged
  write present exactly once, nothing half-applied (versions = audited saves, every record with
  its episode and its summary equal to the core's summary of the stored record, no orphan rows),
  and the integrity check (SQLite ``PRAGMA integrity_check`` + WAL + ``foreign_key_check``;
  PostgreSQL ``amcheck.bt_index_check`` on every index);
- ``trdnav import`` of ``--histories`` files is killed ``--process-kills`` times at a random
  moment of its run: the imported patients are all there or none of them;
- ``trdnav restore`` is killed (with its ``psql``) ``--process-kills`` times: the database is
  exactly what it was, or exactly the backup.

Prints one line of figures per run (docs/reliability.md quotes them); exits 1 on any loss,
half-applied record, partial import/restore or integrity failure. The harness is
``tests/reliability/`` (the suite runs 5 kills per database).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.crash import import_kills, restore_kills, server_kills


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="server kills per database")
    parser.add_argument(
        "--process-kills", type=int, default=20, help="kills of import and of restore"
    )
    parser.add_argument("--histories", type=int, default=100, help="files per import")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--only", choices=["server", "import", "restore"], default=None)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--verbose", action="store_true", help="a line after every kill")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failed = False
    log = print if args.verbose else None
    with tempfile.TemporaryDirectory(prefix="trdnav-kills-") as tmp:
        folder = Path(tmp)
        for kind in args.databases.split(","):
            if args.only in (None, "server"):
                started = time.monotonic()
                report = server_kills(kind, args.kills, folder, rng, log=log)
                print(report.line(), f" ({time.monotonic() - started:.0f} s)", flush=True)
                failed |= bool(report.problems) or report.survived != report.kills
                for problem in report.problems[:10]:
                    print("   ", problem)
            for name, run in (("import", import_kills), ("restore", restore_kills)):
                if args.only not in (None, name):
                    continue
                started = time.monotonic()
                outcome = run(kind, args.process_kills, folder, rng, args.histories)
                print(outcome.line(), f" ({time.monotonic() - started:.0f} s)", flush=True)
                failed |= bool(outcome.problems) or outcome.partial > 0
                for problem in outcome.problems[:10]:
                    print("   ", problem)
    print("FAILED" if failed else "ok: nothing lost, nothing half-applied, integrity ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
