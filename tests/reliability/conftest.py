"""Fixtures of the reliability suite: each test runs on SQLite (WAL) and PostgreSQL.

The harness (``harness.py``) runs the real server and the real command line as subprocesses;
``bench/bench_kills.py`` and ``bench/bench_concurrency.py`` run the long versions of these tests.
A failing test's report ends with the server's log (section *trdnav serve log*).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    """The database engine of the test."""
    if request.param == "postgresql" and os.environ.get("TRDNAV_SKIP_POSTGRES") == "1":
        pytest.skip("TRDNAV_SKIP_POSTGRES=1: PostgreSQL tests skipped on request")
    return str(request.param)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A generator seeded by the test's name: a failure can be replayed."""
    return random.Random(request.node.nodeid)  # noqa: S311 - kill moments, not secrets


@pytest.fixture
def logs(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The folder the servers write their logs to; attached to the report when a test fails."""
    request.node.stash[LOGS] = tmp_path
    return tmp_path


LOGS = pytest.StashKey[Path]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    folder = item.stash.get(LOGS, None)
    if report.when == "call" and report.failed and folder is not None:
        for log in sorted(folder.glob("*.log")):
            text = log.read_text(encoding="utf-8", errors="replace")[-6000:]
            report.sections.append((f"trdnav serve log ({log.name})", text))
    return report
