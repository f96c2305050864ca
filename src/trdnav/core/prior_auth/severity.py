"""Scores a policy asks for: a recent baseline severity, and the response a renewal needs."""

from __future__ import annotations

import math
from datetime import date

from trdnav.core.date_range import add_days
from trdnav.core.history import Medication
from trdnav.core.measures import ScoredMeasurement
from trdnav.core.prior_auth.context import (
    TREATMENTS,
    Context,
    instrument_ids,
    instrument_names,
    iso,
    plural,
    result,
    score_change,
    score_rows,
)
from trdnav.core.prior_auth.model import CriterionResult, Evidence
from trdnav.core.trajectory import TRIAL_OUTCOME_INSTRUMENTS
from trdnav.knowledge.payers import BaselineSeverity, CourseLimit, ScoreThreshold

# --- baseline severity ---------------------------------------------------------------------------


def _meets(s: ScoredMeasurement, t: ScoreThreshold) -> bool:
    total = s.score.total
    assert total is not None  # noqa: S101 - only scores with a total are considered
    at = math.isclose(total, t.min_total, abs_tol=1e-9)
    return total > t.min_total or (t.inclusive and at)


def _threshold_text(ctx: Context, inst_id: str, t: ScoreThreshold) -> str:
    return f"{ctx.kb.instruments[inst_id].name} {'≥' if t.inclusive else '>'} {t.min_total:g}"


def check_baseline_severity(ctx: Context, c: BaselineSeverity) -> CriterionResult:
    by_id: dict[str, ScoreThreshold] = {}
    for t in c.thresholds:
        for inst_id in instrument_ids(ctx, (t.instrument,)):
            by_id.setdefault(inst_id, t)
    since = add_days(ctx.request_date, -c.within_days)
    names = instrument_names(ctx, tuple(by_id))
    wanted = " or ".join(_threshold_text(ctx, i, t) for i, t in by_id.items())
    accepted = [s for s in ctx.scored if s.instrument_id in by_id and s.score.total is not None]
    recent = [s for s in accepted if since <= s.date <= ctx.request_date]

    def row(s: ScoredMeasurement, counts: bool, why: str | None) -> Evidence:
        assert s.score.total is not None  # noqa: S101 - filtered above
        return Evidence(
            kind="score",
            ref=f"measurements[{s.index}]",
            on=s.date,
            summary=f"{s.instrument} {s.score.total:g} on {iso(s.date)}",
            counts=counts,
            why_not=why,
        )

    if not recent:
        rows = []
        if accepted:
            old = accepted[-1]
            age = (ctx.request_date - old.date).days
            rows.append(
                row(old, False, f"{age} days before the request; within {c.within_days} needed")
            )
        gap = f"no {names} within {c.within_days} days before {iso(ctx.request_date)}"
        return result(c, "missing", f"{gap} ({wanted} needed).", rows, [gap])
    latest_day = recent[-1].date
    latest = [s for s in recent if s.date == latest_day]
    rows = [
        row(s, False, f"a later score ({iso(latest_day)}) decides")
        for s in recent
        if s.date != latest_day
    ]
    meeting = False
    for s in latest:
        ok = _meets(s, by_id[s.instrument_id])
        meeting = meeting or ok
        why = (
            None if ok else f"below {_threshold_text(ctx, s.instrument_id, by_id[s.instrument_id])}"
        )
        rows.append(row(s, ok, why))
    rows.reverse()  # latest first
    shown = "; ".join(f"{s.instrument} {s.score.total:g}" for s in latest)
    when = f"on {iso(latest_day)} ({(ctx.request_date - latest_day).days} days before the request)"
    if meeting:
        return result(c, "met", f"latest score {shown} {when}; {wanted} needed.", rows)
    return result(c, "not_met", f"latest score {shown} {when} is below {wanted}.", rows)


# --- course limit --------------------------------------------------------------------------------


def _course(ctx: Context) -> tuple[int, date, date | None] | None:
    """The latest course of the policy's treatment started by the request date."""
    want = ctx.policy.treatment
    found: tuple[int, date, date | None] | None = None
    verdicts = {v.index: v for v in ctx.assessment.trials}
    for i, t in enumerate(ctx.history.treatments):
        v = verdicts.get(i)
        same = t.type == want or (isinstance(t, Medication) and v is not None and v.drug == want)
        if same and t.start <= ctx.request_date and (found is None or t.start >= found[1]):
            found = (i, t.start, t.stop)
    return found


def check_course_limit(ctx: Context, c: CourseLimit) -> CriterionResult:
    limit = (
        f"the requested course must not exceed {plural(c.max_sessions, 'session')}"
        if c.max_sessions is not None
        else ""
    )
    if ctx.kind == "initial" or c.renewal_min_improvement_pct is None:
        if not limit:
            return result(c, "not_applicable", "no session limit and no renewal response to judge.")
        return result(c, "met", f"{limit} (a statement for the request, not read from the record).")
    treatment = TREATMENTS[ctx.policy.treatment]
    course = _course(ctx)
    need = f"improvement of at least {c.renewal_min_improvement_pct:g} % from the course baseline"
    if course is None:
        gap = f"no {treatment} course recorded to judge the renewal"
        return result(c, "missing", f"{gap}; {need} needed.", (), [gap])
    i, start, stop = course
    ids = instrument_ids(ctx, c.instruments) or TRIAL_OUTCOME_INSTRUMENTS
    names = instrument_names(ctx, ids)
    course_row = Evidence(
        kind="treatment",
        ref=f"treatments[{i}]",
        on=start,
        summary=f"{treatment} course from {iso(start)}"
        + (f" to {iso(stop)}" if stop else ", ongoing"),
    )
    change = score_change(ctx, ids, start, stop)
    if change is None or change.improvement is None:
        gap = (
            f"{change.instrument} baseline of 0: improvement cannot be computed"
            if change is not None
            else f"no {names} score at the start of the {treatment} course ({iso(start)}) "
            "and later in it"
        )
        return result(c, "missing", f"{gap}; {need} needed.", [course_row], [gap])
    imp = change.improvement
    target = c.renewal_min_improvement_pct
    ok = imp > target or math.isclose(imp, target, abs_tol=1e-9)
    why = None if ok else f"{imp:.1f} % improvement; {target:g} % needed"
    rows = [course_row, *score_rows(change, f"the {treatment} course", ok, why)]
    tail = f"; {limit}" if limit else ""
    reason = f"{change.text()}: {imp:.1f} % improvement; {need} needed{tail}."
    return result(c, "met" if ok else "not_met", reason, rows)
