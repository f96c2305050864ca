"""`trdnav import` and `trdnav restore` killed midway leave all of their work or none of it.

Short runs of ``bench/bench_kills.py`` (which kills each 50 times per database).
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.reliability.crash import import_kills, restore_kills


def test_an_import_killed_at_a_random_moment_leaves_every_history_or_none(
    kind: str, logs: Path, rng: random.Random
) -> None:
    report = import_kills(kind, 2, logs, rng, histories=30)
    assert report.problems == []
    assert report.partial == 0
    assert report.half_applied == 0 and report.integrity_failures == 0
    assert report.kills + report.finished == 2


def test_a_restore_killed_at_a_random_moment_leaves_the_database_before_or_the_backup(
    kind: str, logs: Path, rng: random.Random
) -> None:
    report = restore_kills(kind, 2, logs, rng, histories=40, filler=20_000)
    assert report.problems == []
    assert report.partial == 0
    assert report.half_applied == 0 and report.integrity_failures == 0
    assert report.kills + report.finished == 2
