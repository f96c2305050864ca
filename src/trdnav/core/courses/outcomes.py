"""Clinic-level outcomes: response and remission rates by treatment, with Wilson 95 % intervals.

Response and remission come from each instrument's rules in the knowledge base
(``instruments/<id>.yaml``: ``outcomes.response_reduction``, ``outcomes.remission_max_total``):
response = ``(baseline − last) / baseline ≥ response_reduction``; remission = ``last ≤
remission_max_total``. A course without both scores, or on an instrument without the rule, counts
in ``courses`` but not in that rate's ``n``; a baseline of 0 cannot show a response.

Wilson score interval (z = 1.959964, the 97.5th normal percentile), for k of n:
``centre = (p + z²/2n) / (1 + z²/n)``, ``half = z √(p(1−p)/n + z²/4n²) / (1 + z²/n)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from trdnav.core.courses.model import CourseTreatment
from trdnav.core.courses.results import OutcomeRate, Proportion
from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import Knowledge

Z95 = 1.959963984540054
TREATMENTS: tuple[CourseTreatment, ...] = ("esketamine", "ketamine", "rtms", "ect")


class CourseResult(BaseModel):
    """One course's scores on one instrument: the baseline (before the first session) and the
    last score of the course (None when not measured)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    treatment: CourseTreatment
    instrument: str = Field(min_length=1)
    baseline: float | None = Field(default=None, ge=0)
    last: float | None = Field(default=None, ge=0)


def wilson(count: int, n: int, z: float = Z95) -> Proportion:
    """``count`` of ``n`` with its Wilson score interval (None when n = 0)."""
    if n < 0 or not 0 <= count <= n:
        raise InputError([Problem("count", "count_invalid", "need 0 ≤ count ≤ n")])
    if n == 0:
        return Proportion(count=0, n=0, rate=None, ci_low=None, ci_high=None)
    p = count / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return Proportion(
        count=count, n=n, rate=p, ci_low=max(0.0, centre - half), ci_high=min(1.0, centre + half)
    )


def clinic_outcomes(results: Iterable[CourseResult], kb: Knowledge) -> list[OutcomeRate]:
    """One rate per treatment present in ``results``, in the order esketamine, ketamine, rTMS,
    ECT. An unknown instrument is an :class:`InputError` naming ``results.<i>.instrument``."""
    items = list(results)
    problems: list[Problem] = []
    tallies: dict[str, list[int]] = {}
    cites: dict[str, set[str]] = {}
    for i, r in enumerate(items):
        inst = kb.resolve_instrument(r.instrument)
        if inst is None:
            problems.append(
                Problem(f"results.{i}.instrument", "unknown_instrument", f"{r.instrument!r}")
            )
            continue
        t = tallies.setdefault(r.treatment, [0, 0, 0, 0, 0])  # courses, resp k, n, rem k, n
        t[0] += 1
        rule = inst.outcomes
        if rule is None or r.baseline is None or r.last is None:
            continue
        cites.setdefault(r.treatment, set()).update(rule.source)
        if rule.response_reduction is not None and r.baseline > 0:
            t[2] += 1
            # a tolerance of 1e-9 so that exactly 50 % (20 -> 10) is a response despite rounding
            reduction = (r.baseline - r.last) / r.baseline
            if reduction >= rule.response_reduction - 1e-9:
                t[1] += 1
        if rule.remission_max_total is not None:
            t[4] += 1
            if r.last <= rule.remission_max_total:
                t[3] += 1
    if problems:
        raise InputError(problems)
    return [
        OutcomeRate(
            treatment=tr,
            courses=tallies[tr][0],
            response=wilson(tallies[tr][1], tallies[tr][2]),
            remission=wilson(tallies[tr][3], tallies[tr][4]),
            citations=tuple(sorted(cites.get(tr, set()))),
        )
        for tr in TREATMENTS
        if tr in tallies
    ]
