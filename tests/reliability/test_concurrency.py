"""20 clients on one record and 20 on their own, at once: no lost update, no deadlock, no 500.

A short run (8 s per database) of ``bench/bench_concurrency.py`` (60 s per database).
"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.concurrency import editors

SECONDS = 6


def test_concurrent_editors_lose_no_accepted_change_and_are_refused_only_with_409_or_412(
    kind: str, logs: Path
) -> None:
    report = editors(kind, SECONDS, logs)
    same, different = report.groups
    assert report.problems == []
    assert report.errors == 0  # no 500, no 503, no request timed out
    assert report.ended_in < 60  # the clients stopped: no deadlock
    assert report.lost == 0  # every accepted change is stored
    assert report.refused_stored == 0  # no refused one is
    assert report.version_mismatches == []  # each accepted change made one version, no other
    assert report.half_applied == 0 and report.integrity_failures == 0
    assert len(same.accepted) > 0 and len(same.refused) > 0  # they did collide
    assert len(different.accepted) > 0 and different.refused == []  # their own records: no clash
