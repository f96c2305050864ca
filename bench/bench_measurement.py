"""Benchmark: measurement-based care at clinic scale.

1. Score 1,000,000 random PHQ-9 responses with the vectorised ``score_matrix`` (target: at least
   200,000 responses per second on one core), and 100,000 with the scalar ``score_answers`` for
   comparison.
2. Trajectories of 100,000 patients with 8–12 PHQ-9 forms each: histories are validated
   (``History.model_validate``), scored with ``score_measurements`` (the real path, one
   ``score_answers`` per form), then ``trajectories`` is timed on its own.

Prints the figures; exits 1 if the scoring target is missed so that `make bench` makes a
regression visible.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from typing import Any

import numpy as np

from trdnav.core.history import History
from trdnav.core.measures import score_measurements
from trdnav.core.scoring import score_answers
from trdnav.core.scoring_vector import score_matrix
from trdnav.core.trajectory import trajectories
from trdnav.knowledge.load import default_knowledge

N_VECTOR = 1_000_000
N_SCALAR = 100_000
N_PATIENTS = 100_000
TARGET = 200_000
KB = default_knowledge()
PHQ9 = KB.instruments["phq9"]
TODAY = date(2024, 6, 1)


def bench_scoring(rng: np.random.Generator) -> float:
    answers = rng.integers(0, 4, size=(N_VECTOR, 9), dtype=np.int8)
    score_matrix(PHQ9, answers[:1000])  # warm-up
    t0 = time.perf_counter()
    v = score_matrix(PHQ9, answers)
    elapsed = time.perf_counter() - t0
    rate = N_VECTOR / elapsed
    counts = np.bincount(v.band_index, minlength=len(v.band_names))
    bands = ", ".join(f"{name} {int(c):,}" for name, c in zip(v.band_names, counts, strict=True))
    signal = v.suicide_signal
    assert signal is not None  # noqa: S101 - the PHQ-9 has a suicide item
    print(
        f"score_matrix: {N_VECTOR:,} PHQ-9 responses in {elapsed:.3f} s = {rate:,.0f} responses/s "
        f"(validation, totals, bands, item-9 signal; one core); target ≥ {TARGET:,}/s "
        f"{'met' if rate >= TARGET else 'MISSED'}"
    )
    print(f"  bands: {bands}; item-9 signal {int(signal.sum()):,}")

    rows = answers[:N_SCALAR].tolist()
    t0 = time.perf_counter()
    scalar = [score_answers(PHQ9, r) for r in rows]
    s_elapsed = time.perf_counter() - t0
    s_rate = N_SCALAR / s_elapsed
    if any(s.total != t for s, t in zip(scalar, v.totals[:N_SCALAR].tolist(), strict=True)):
        raise SystemExit("score_matrix and score_answers disagree")
    print(
        f"score_answers: {N_SCALAR:,} PHQ-9 responses in {s_elapsed:.2f} s = {s_rate:,.0f} "
        f"responses/s (scalar path, for comparison: score_matrix is {rate / s_rate:,.0f}× faster;"
        " totals agree)"
    )
    return rate


def generate(rng: np.random.Generator, i: int) -> dict[str, Any]:
    """A patient with two sertraline trials and 8–12 fortnightly PHQ-9 forms."""
    onset = date(2020, 1, 1) + timedelta(days=int(rng.integers(0, 900)))
    n = int(rng.integers(8, 13))
    # a noisy downward drift, so trajectories see responses, plateaus and relapses
    level = rng.integers(1, 4, size=9)
    drift = np.arange(n)[:, None] * rng.random() / 4
    items = np.clip(np.rint(level - drift) + rng.integers(-1, 2, size=(n, 9)), 0, 3)
    first = onset + timedelta(days=7)
    second = first + timedelta(weeks=int(rng.integers(6, 12)))
    return {
        "patient": {"id": f"M{i}", "birth_date": date(1970, 1, 1)},
        "assessed_on": TODAY,
        "episode": {"onset": onset, "diagnosis": "mdd_recurrent", "severity": "severe"},
        "treatments": [
            {
                "type": "medication",
                "drug": "sertraline",
                "start": first,
                "stop": second,
                "doses": [
                    {"from": first, "mg_per_day": 50},
                    {"from": first + timedelta(days=14), "mg_per_day": 100},
                ],
            },
            {
                "type": "medication",
                "drug": "sertraline",
                "start": second + timedelta(days=1),
                "doses": [{"from": second + timedelta(days=1), "mg_per_day": 150}],
            },
        ],
        "measurements": [
            {"instrument": "PHQ-9", "date": onset + timedelta(days=14 * k), "items": row}
            for k, row in enumerate(items.astype(np.int64).tolist())
        ],
    }


def bench_trajectories(rng: np.random.Generator) -> None:
    t0 = time.perf_counter()
    histories = [History.model_validate(generate(rng, i)) for i in range(N_PATIENTS)]
    t_build = time.perf_counter() - t0
    n_forms = sum(len(h.measurements) for h in histories)
    t0 = time.perf_counter()
    scored = [score_measurements(h, KB) for h in histories]
    t_score = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = [trajectories(h, s, KB) for h, s in zip(histories, scored, strict=True)]
    elapsed = time.perf_counter() - t0
    print(
        f"trajectories: {N_PATIENTS:,} patients ({n_forms:,} PHQ-9 forms, 8–12 each) in "
        f"{elapsed:.2f} s = {N_PATIENTS / elapsed:,.0f} patients/s "
        f"({n_forms / elapsed:,.0f} forms/s; trajectories() alone, one core)"
    )
    print(
        f"  set-up, not timed above: histories built and validated in {t_build:.1f} s, scored "
        f"with score_measurements in {t_score:.1f} s ({n_forms / t_score:,.0f} forms/s)"
    )
    phq = [r["PHQ-9"] for r in results]
    print(
        f"  PHQ-9 trajectories: response {sum(t.response is True for t in phq):,}, remission "
        f"{sum(t.remission is True for t in phq):,}, relapse "
        f"{sum(t.relapse_on is not None for t in phq):,}, plateau "
        f"{sum(t.plateau is True for t in phq):,}, reliable improvement "
        f"{sum(t.reliable_change == 'improved' for t in phq):,} of {len(phq):,}"
    )


def main() -> int:
    rng = np.random.default_rng(42)
    rate = bench_scoring(rng)
    bench_trajectories(rng)
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
