"""The soak harness (bench/bench_soak.py) for 10 seconds with 5 users: it still runs end to end
against the real server in production mode, every action of its workload is exercised, and no
request fails. The 10-minute, 30-user run is `make reliability` (docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parents[2] / "bench" / "bench_soak.py"
ENDPOINTS = {
    "list",
    "patient page",
    "chart",
    "edit form",
    "edit post",
    "self-report create",
    "self-report link page",
    "self-report form",
    "self-report submit",
    "pdf",
}


def test_a_short_soak_exercises_every_action_without_a_failed_request(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, str(SOAK), "--seconds", "10", "--users", "5", "--think", "0.5"]
    command += ["--extra-patients", "5", "--workers", "1", "--json", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["errors"] == 0, result["error_samples"]
    assert ENDPOINTS <= set(result["endpoints"]), sorted(result["endpoints"])
    assert all(result["endpoints"][name]["requests"] >= 1 for name in ENDPOINTS)
    assert result["server_alive_at_end"] is True
    rss = result["rss_mb"]
    assert 0 < rss["start"] <= rss["max"] and rss["end"] <= rss["max"]
    assert "p95 ms" in run.stdout  # the table was printed
