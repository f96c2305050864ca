"""The server SIGKILLed under acknowledged writes (forms and API) loses nothing it acknowledged.

A short run of ``bench/bench_kills.py``: 5 kills per database (the bench runs 50).
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.reliability.crash import server_kills

KILLS = 3


def test_every_write_acknowledged_before_a_sigkill_is_stored_whole_and_audited(
    kind: str, logs: Path, rng: random.Random
) -> None:
    report = server_kills(kind, KILLS, logs, rng)
    assert report.problems == []
    assert report.kills == KILLS and report.survived == KILLS
    assert report.acknowledged > 0  # the kills fell in a stream of acknowledged writes
    assert report.lost == 0
    assert report.half_applied == 0
    assert report.duplicated == 0
    assert report.integrity_failures == 0
