"""Benchmark: assess 10,000 generated histories (~10 treatments, ~50 measurements each) in process.

Target (issue 2): at least 2,000 histories per second on one core. Prints the figures; exits 1 if
the target is missed so that `make bench` makes a regression visible.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta
from typing import Any

from trdnav.core.assessment import assess
from trdnav.history_files import parse_history
from trdnav.knowledge.load import default_knowledge

N = 10_000
TARGET = 2_000
KB = default_knowledge()
DRUGS = sorted(
    d.id for d in KB.drugs.values() if KB.is_antidepressant(d) and d.dose_unit == "mg/day"
)
OUTCOMES = ["no_response", "partial_response", "response", "remission", "intolerance", "unknown"]


def generate(rng: random.Random, i: int) -> dict[str, Any]:
    onset = date(2018, 1, 1) + timedelta(days=rng.randrange(0, 900))
    day = onset + timedelta(days=14)
    treatments: list[dict[str, Any]] = []
    for _ in range(10):
        drug = rng.choice(DRUGS)
        dose = KB.drugs[drug].antidepressant_dose
        if dose is None:
            raise SystemExit(f"{drug} has no antidepressant dose")
        weeks = rng.randrange(2, 16)
        stop = day + timedelta(weeks=weeks)
        treatments.append(
            {
                "type": "medication",
                "drug": drug,
                "start": day,
                "stop": stop,
                "doses": [
                    {"from": day, "mg_per_day": dose.min_adequate_mg_per_day / 2},
                    {
                        "from": day + timedelta(days=14),
                        "mg_per_day": rng.choice(
                            [dose.min_adequate_mg_per_day, dose.usual_max_mg_per_day]
                        ),
                    },
                ],
                "adherence": rng.choice([0.5, 0.8, 0.95, None]),
                "outcome": rng.choice(OUTCOMES),
            }
        )
        day = stop + timedelta(days=7)
    measurements = [
        {
            "instrument": "PHQ-9",
            "date": onset + timedelta(days=14 * k),
            "items": [rng.randrange(0, 4) for _ in range(9)],
        }
        for k in range(50)
    ]
    return {
        "patient": {"id": f"B{i}", "birth_date": date(1970, 1, 1)},
        "assessed_on": date(2024, 6, 1),
        "episode": {"onset": onset, "diagnosis": "mdd_recurrent", "severity": "severe"},
        "treatments": treatments,
        "measurements": measurements,
    }


def _run(raw: list[dict[str, Any]], label: str) -> float:
    today = date(2024, 6, 1)
    t0 = time.perf_counter()
    statuses: dict[str, int] = {}
    for data in raw:
        a = assess(parse_history(data, KB, today), KB)
        statuses[a.trd.status] = statuses.get(a.trd.status, 0) + 1
    elapsed = time.perf_counter() - t0
    rate = len(raw) / elapsed
    print(
        f"assess, {label}: {len(raw)} histories in {elapsed:.2f} s = {rate:,.0f} histories/s "
        f"(validation + checks + assessment, one core); statuses {statuses}"
    )
    return rate


def main() -> int:
    rng = random.Random(42)
    raw = [generate(rng, i) for i in range(N)]
    full = _run(raw, "10 treatments + 50 PHQ-9 forms each (all scored, trajectories, alerts)")
    bare = [{**d, "measurements": []} for d in raw]
    _run(bare, "the same without measurements (the issue-2 pipeline)")
    verdict = "met" if full >= TARGET else "MISSED"
    print(f"target ≥ {TARGET:,} histories/s with measurements: {verdict}")
    return 0 if full >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
