"""What every criterion check reads: the record, the assessment, the request, and a few shared
readings of them (look-back windows, the scores inside a trial, how a row is named)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from trdnav.core.assessment import Assessment
from trdnav.core.date_range import add_days
from trdnav.core.history import History
from trdnav.core.measures import ScoredMeasurement
from trdnav.core.prior_auth.model import CriterionResult, Evidence, Status
from trdnav.core.trajectory import TRIAL_OUTCOME_INSTRUMENTS
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.payers import Criterion, Failure, PayerPolicy, Window

RequestKind = Literal["initial", "renewal"]
TREATMENTS: dict[str, str] = {
    "medication": "medication",
    "ect": "ECT",
    "rtms": "rTMS",
    "esketamine": "esketamine",
    "ketamine": "ketamine",
    "psychotherapy": "psychotherapy",
}


@dataclass(frozen=True, slots=True)
class Context:
    policy: PayerPolicy
    history: History
    assessment: Assessment
    kb: Knowledge
    request_date: date
    kind: RequestKind
    scored: tuple[ScoredMeasurement, ...]  # scored measurements up to the request date, by date


def result(
    c: Criterion,
    status: Status,
    reason: str,
    evidence: Sequence[Evidence] = (),
    missing: Sequence[str] = (),
    *,
    attestation: bool = False,
) -> CriterionResult:
    return CriterionResult(
        id=c.id,
        type=c.type,
        text=c.text,
        section=c.section,
        status=status,
        reason=reason,
        evidence=tuple(evidence),
        missing=tuple(missing),
        attestation=attestation,
    )


def iso(d: date) -> str:
    return d.isoformat()


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def years_before(d: date, years: float) -> date:
    """``d`` minus ``years``: calendar years when whole (29 February -> 28 February)."""
    if float(years).is_integer():
        y = d.year - int(years)
        try:
            return d.replace(year=y)
        except ValueError:
            return d.replace(year=y, day=28)
    return add_days(d, -round(years * 365.25))


def outside_window(ctx: Context, window: Window, start: date, stop: date | None) -> str | None:
    """Why a treatment from ``start`` to ``stop`` lies outside the policy's window (None: in)."""
    if start > ctx.request_date:
        return f"starts after the request date {iso(ctx.request_date)}"
    if window.scope == "current_episode":
        onset = ctx.history.episode.onset
        if stop is not None and stop < onset:
            return f"ended before the current episode began ({iso(onset)})"
    elif window.scope == "lookback":
        assert window.years is not None  # noqa: S101 - the schema requires it for a look-back
        since = years_before(ctx.request_date, window.years)
        if start < since:
            return f"started before the {window.years:g}-year look-back (from {iso(since)})"
    return None


def instrument_ids(ctx: Context, names: Sequence[str]) -> tuple[str, ...]:
    """Instrument ids for the names a policy gives (ids or names); unknown ones are dropped (the
    loader reports them)."""
    out: list[str] = []
    for n in names:
        inst = ctx.kb.instruments.get(n) or ctx.kb.resolve_instrument(n)
        if inst is not None and inst.id not in out:
            out.append(inst.id)
    return tuple(out)


def instrument_names(ctx: Context, ids: Sequence[str]) -> str:
    """``PHQ-9``, ``PHQ-9 or MADRS``, ``PHQ-9, QIDS-SR16 or MADRS``."""
    names = [ctx.kb.instruments[i].name for i in ids]
    if len(names) <= 1:
        return "".join(names) or "validated scale"
    return f"{', '.join(names[:-1])} or {names[-1]}"


def failure_instruments(ctx: Context, failure: Failure) -> tuple[str, ...]:
    """The instruments that may show a trial failed: the policy's, else the depression scales a
    trial outcome may be derived from (never an anxiety scale)."""
    if failure.instruments:
        return instrument_ids(ctx, failure.instruments)
    return tuple(i for i in TRIAL_OUTCOME_INSTRUMENTS if i in ctx.kb.instruments)


def failure_rule(failure: Failure) -> str | None:
    """``≤ 25 % improvement`` / ``< 50 % improvement`` / None when the policy names no figure."""
    if failure.max_improvement_pct is not None:
        return f"≤ {failure.max_improvement_pct:g} % improvement"
    if failure.below_improvement_pct is not None:
        return f"< {failure.below_improvement_pct:g} % improvement"
    return None


def meets_failure(failure: Failure, improvement: float) -> bool:
    """Improvement (in %, positive = better) within the failure definition. Exactly x % counts as
    ≤ x %; exactly y % does not count as < y %."""
    x, y = failure.max_improvement_pct, failure.below_improvement_pct
    if x is not None:
        return improvement < x or math.isclose(improvement, x, abs_tol=1e-9)
    return y is None or (improvement < y and not math.isclose(improvement, y, abs_tol=1e-9))


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """A baseline and an end point of one instrument around a treatment."""

    instrument: str  # canonical name
    baseline: ScoredMeasurement
    end: ScoredMeasurement

    @property
    def improvement(self) -> float | None:
        """Percent improvement from the baseline (positive = better); None for a baseline of 0."""
        b, e = self.total(self.baseline), self.total(self.end)
        return None if b == 0 else (b - e) / b * 100

    @staticmethod
    def total(s: ScoredMeasurement) -> float:
        assert s.score.total is not None  # noqa: S101 - only scores with a total are used
        return s.score.total

    def text(self) -> str:
        b, e = self.total(self.baseline), self.total(self.end)
        imp = self.improvement
        change = "" if imp is None else f" ({-imp:+.1f} %)"
        return (
            f"{self.instrument} {b:g} on {iso(self.baseline.date)} → {e:g} on "
            f"{iso(self.end.date)}{change}"
        )


def score_change(
    ctx: Context, ids: Sequence[str], start: date, stop: date | None
) -> ScoreChange | None:
    """The first instrument of ``ids`` with a baseline and a later end point around a treatment.

    Baseline: the last score in the knowledge base's look-back days up to the start, else the
    first score inside the treatment (when a later one follows); end point: the last score inside,
    up to the grace days after the stop and never after the request date — as the assessment
    derives a trial's outcome (``trajectory.derive_trial_outcome``)."""
    m = ctx.kb.measurement
    lookback = int(m.trial_baseline_lookback_days.value)
    grace = timedelta(days=m.trial_window_grace_days.value)
    end = min((stop or ctx.request_date) + grace, ctx.request_date)
    for inst_id in ids:
        rows = [s for s in ctx.scored if s.instrument_id == inst_id and s.score.total is not None]
        before = [s for s in rows if add_days(start, -lookback) <= s.date <= start]
        inside = [s for s in rows if start < s.date <= end]
        if before:
            base = before[-1]
        elif len(inside) >= 2:
            base, inside = inside[0], inside[1:]
        else:
            continue
        if inside:
            name = ctx.kb.instruments[inst_id].name
            return ScoreChange(instrument=name, baseline=base, end=inside[-1])
    return None


def score_rows(change: ScoreChange, what: str, counts: bool, why_not: str | None) -> list[Evidence]:
    """The two scores a conclusion rests on, as evidence rows."""
    rows = []
    for label, s in (
        (f"baseline of {what}", change.baseline),
        (f"end point of {what}", change.end),
    ):
        rows.append(
            Evidence(
                kind="score",
                ref=f"measurements[{s.index}]",
                on=s.date,
                summary=f"{change.instrument} {ScoreChange.total(s):g} — {label}",
                counts=counts,
                why_not=why_not,
            )
        )
    return rows
