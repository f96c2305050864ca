"""Failed antidepressant trials and failed augmentation trials, as a payer counts them.

Each trial of the assessment is judged on the policy's terms — in its window, weeks at the dose
level, adherence, failure by its definition — and lands in one of three states: it *qualifies*, it
*lacks* data that could make it qualify (named), or it *fails* (with the reason). Trials count once
per drug per episode; the criterion is met when enough qualify from enough classes, not met when
even every trial lacking data could not make up the number, and missing data otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from trdnav.core.adequacy import TrialVerdict, _weeks_at_or_above
from trdnav.core.history import Medication, Outcome
from trdnav.core.prior_auth.context import (
    Context,
    ScoreChange,
    failure_instruments,
    failure_rule,
    instrument_names,
    iso,
    meets_failure,
    outside_window,
    plural,
    result,
    score_change,
    score_rows,
)
from trdnav.core.prior_auth.model import CriterionResult, Evidence
from trdnav.core.reasons import ReasonCode
from trdnav.knowledge.payers import AugmentationTrials, FailedTrials, Failure

State = Literal["qualifies", "lacks", "fails"]
_RANK: dict[State, int] = {"qualifies": 0, "lacks": 1, "fails": 2}
FAILED = frozenset({Outcome.NO_RESPONSE, Outcome.PARTIAL_RESPONSE, Outcome.RESPONSE_LOST})
_EPS = 1e-9


@dataclass(slots=True)
class TrialCheck:
    """One trial judged on the policy's terms."""

    verdict: TrialVerdict
    name: str  # the drug's name
    drug_class: str
    group: tuple[str, bool]  # (drug, before the current episode): one count per drug per episode
    summary: str = ""
    fails: list[str] = field(default_factory=list)
    lacks: list[str] = field(default_factory=list)
    change: ScoreChange | None = None
    basis: str = ""  # how failure was shown ("PHQ-9 … (−10.0 %): ≤ 25 % improvement")
    out_of_window: str | None = None

    @property
    def state(self) -> State:
        if self.out_of_window or self.fails:
            return "fails"
        return "lacks" if self.lacks else "qualifies"


def class_label(ctx: Context, class_id: str) -> str:
    """``SSRI`` from "selective serotonin reuptake inhibitor (SSRI)"; else the label's head."""
    head, _, tail = ctx.kb.classes[class_id].label.partition(" (")
    abbrev = tail.rstrip(")")
    return abbrev if abbrev and abbrev.replace("-", "").isupper() else head


def _explained(v: TrialVerdict, code: ReasonCode) -> str | None:
    return next((e.message for e in v.explanations if e.code == code), None)


def _failure(ctx: Context, failure: Failure, check: TrialCheck) -> None:
    """Was the trial a failure as the policy defines it? Fills ``basis``, ``fails``, ``lacks``."""
    v = check.verdict
    rule = failure_rule(failure)
    ids = failure_instruments(ctx, failure)
    check.change = score_change(ctx, ids, v.start, v.stop)
    change = check.change
    if rule is not None and change is not None and change.improvement is not None:
        improvement = change.improvement
        if meets_failure(failure, improvement):
            check.basis = f"{change.text()}: {rule}"
        else:
            check.basis = change.text()
            check.fails.append(f"{change.instrument} improved {improvement:.1f} %, not {rule}")
        return
    if rule is not None and failure.scores_required:
        why = (
            f"{change.instrument} baseline of 0, so no percent change"
            if change is not None
            else f"no {instrument_names(ctx, ids)} score inside the trial"
        )
        check.lacks.append(f"{why} to show {rule}")
        return
    label = v.outcome.value.replace("_", " ")
    derived = v.outcome_source == "measurements"
    source = "outcome derived from scores" if derived else "recorded outcome"
    if rule is not None and change is not None:
        source += f" ({change.instrument} baseline of 0)"
    elif rule is not None:
        source = (
            "outcome derived from another scale's scores" if derived else source + ", no scores"
        )
    elif change is not None:
        label += f"; {change.text()}"
    if v.outcome in FAILED:
        check.basis = f"{source}: {label}"
    elif v.outcome is Outcome.UNKNOWN:
        check.lacks.append(
            "outcome not recorded and no score inside the trial"
            if rule is not None
            else "outcome not recorded"
        )
    else:
        check.basis = f"{source}: {label}"
        check.fails.append(f"{source}: {label}, not a failure")


def _summary(ctx: Context, check: TrialCheck, weeks: float | None, level: str) -> str:
    v = check.verdict
    unit = ctx.kb.drugs[v.drug].dose_unit
    stop = iso(v.stop) if v.stop else "ongoing"
    parts = [f"{check.name} ({class_label(ctx, v.drug_class)}), {iso(v.start)} to {stop}"]
    parts.append(
        "no dose recorded" if v.max_mg_per_day is None else f"up to {v.max_mg_per_day:g} {unit}"
    )
    if weeks is not None:
        parts.append(f"{weeks:.1f} weeks {level}")
    if v.adherence is not None:
        parts.append(f"adherence {v.adherence:.0%}")
    if check.basis:
        parts.append(check.basis)
    return ", ".join(parts)


def _new_check(ctx: Context, v: TrialVerdict, window_why: str | None) -> TrialCheck:
    onset = ctx.history.episode.onset
    before = v.stop is not None and v.stop < onset
    return TrialCheck(
        verdict=v,
        name=ctx.kb.drugs[v.drug].name,
        drug_class=v.drug_class,
        group=(v.drug, before),
        out_of_window=window_why,
    )


def _weeks(ctx: Context, c: FailedTrials, check: TrialCheck) -> tuple[float | None, str]:
    """Weeks at the policy's dose level, and how that level reads."""
    v = check.verdict
    if c.dose_level == "adequate":
        if v.weeks_at_adequate_dose is None:
            check.lacks.append("dose not recorded")
        elif (below := _explained(v, ReasonCode.DOSE_BELOW_MINIMUM)) is not None:
            check.fails.append(below)
        return v.weeks_at_adequate_dose, "at an adequate dose"
    dose = ctx.kb.drugs[v.drug].antidepressant_dose
    assert dose is not None  # noqa: S101 - every antidepressant has one (schema)
    top = dose.usual_max_mg_per_day
    level = f"at the usual maximum ({top:g} mg/day) or above"
    trial = ctx.history.treatments[v.index]
    assert isinstance(trial, Medication)  # noqa: S101 - checked by evaluate_policy
    if not trial.doses:
        check.lacks.append("dose not recorded")
        return None, level
    end = min(trial.stop or ctx.request_date, ctx.request_date)
    return round(_weeks_at_or_above(trial, top, end), 1), level


def _stopped_for_intolerance(
    ctx: Context, failure: Failure, v: TrialVerdict, check: TrialCheck
) -> bool:
    """A trial stopped for intolerance: counted or not as the policy says (``check`` filled)."""
    if v.outcome is not Outcome.INTOLERANCE:
        return False
    if failure.intolerance_counts:
        check.basis = "stopped for intolerance (the policy accepts intolerance)"
    else:
        check.fails.append("stopped for intolerance; the policy counts inadequate response only")
    check.summary = _summary(ctx, check, v.weeks_at_adequate_dose, "at an adequate dose")
    return True


def _check_antidepressant(ctx: Context, c: FailedTrials, v: TrialVerdict) -> TrialCheck:
    check = _new_check(ctx, v, outside_window(ctx, c.window, v.start, v.stop))
    if _stopped_for_intolerance(ctx, c.failure, v, check):
        return check
    weeks, level = _weeks(ctx, c, check)
    if weeks is not None and weeks + _EPS < c.min_weeks:
        check.fails.append(f"{weeks:.1f} weeks {level}; {c.min_weeks:g} needed")
    if c.min_adherence is not None:
        if v.adherence is None:
            check.lacks.append("adherence not recorded")
        elif v.adherence + _EPS < c.min_adherence:
            check.fails.append(
                f"adherence {v.adherence:.0%}; at least {c.min_adherence:.0%} needed"
            )
    _failure(ctx, c.failure, check)
    check.summary = _summary(ctx, check, weeks, level)
    return check


def _check_augmentation(ctx: Context, c: AugmentationTrials, v: TrialVerdict) -> TrialCheck:
    check = _new_check(ctx, v, outside_window(ctx, c.window, v.start, v.stop))
    if _stopped_for_intolerance(ctx, c.failure, v, check):
        return check
    for code in (ReasonCode.DOSE_BELOW_MINIMUM, ReasonCode.SERUM_LEVEL_BELOW_TARGET):
        if (msg := _explained(v, code)) is not None:
            check.fails.append(msg)
    for code in (ReasonCode.DOSE_UNKNOWN, ReasonCode.SERUM_LEVEL_UNKNOWN):
        if (msg := _explained(v, code)) is not None:
            check.lacks.append(msg)
    weeks = v.weeks_at_adequate_dose
    if weeks is not None and weeks + _EPS < c.min_weeks:
        check.fails.append(f"{weeks:.1f} weeks at an adequate dose; {c.min_weeks:g} needed")
    _failure(ctx, c.failure, check)
    check.summary = _summary(ctx, check, weeks, "at an adequate dose")
    return check


def _rows(
    checks: Sequence[TrialCheck], chosen: dict[tuple[str, bool], TrialCheck]
) -> list[Evidence]:
    rows: list[Evidence] = []
    for ch in checks:
        v = ch.verdict
        best = chosen[ch.group]
        counts = best is ch and ch.state == "qualifies"
        why: str | None = None
        if ch.out_of_window:
            why = ch.out_of_window
        elif ch.fails:
            why = "; ".join(ch.fails)
        elif not counts and best.state == "qualifies":
            why = f"another {ch.name} trial is already counted (treatments[{best.verdict.index}])"
        elif ch.lacks:
            why = "lacks data: " + "; ".join(ch.lacks)
        rows.append(
            Evidence(
                kind="trial",
                ref=f"treatments[{v.index}]",
                on=v.start,
                summary=ch.summary,
                counts=counts,
                why_not=why,
            )
        )
        if ch.change is not None and not ch.out_of_window:
            rows.extend(score_rows(ch.change, f"the {ch.name} trial", counts, why))
    return rows


def _tally(
    ctx: Context,
    c: FailedTrials | AugmentationTrials,
    checks: list[TrialCheck],
    min_classes: int,
    noun: str,
) -> CriterionResult:
    chosen: dict[tuple[str, bool], TrialCheck] = {}
    for ch in sorted(checks, key=lambda x: (_RANK[x.state], x.verdict.start, x.verdict.index)):
        chosen.setdefault(ch.group, ch)
    qualifying = [ch for ch in chosen.values() if ch.state == "qualifies"]
    lacking = [ch for ch in chosen.values() if ch.state == "lacks"]
    classes = {ch.drug_class for ch in qualifying}
    possible = classes | {ch.drug_class for ch in lacking}
    need = plural(c.min_count, noun)
    if min_classes > 1:
        need += f" from {plural(min_classes, 'class', 'classes')}"
    found = plural(len(qualifying), noun)
    if min_classes > 1:
        found += f" from {plural(len(classes), 'class', 'classes')}"
    names = ", ".join(ch.name for ch in sorted(qualifying, key=lambda x: x.verdict.start))
    found += f" ({names})" if names else ""
    found += " qualifies" if len(qualifying) == 1 else " qualify"
    rows = _rows(sorted(checks, key=lambda x: (x.verdict.start, x.verdict.index)), chosen)
    if len(qualifying) >= c.min_count and len(classes) >= min_classes:
        return result(c, "met", f"{found}; {need} needed.", rows)
    if len(qualifying) + len(lacking) >= c.min_count and len(possible) >= min_classes:
        missing = [
            f"{ch.name} ({iso(ch.verdict.start)}): {lack}"
            for ch in sorted(lacking, key=lambda x: x.verdict.start)
            for lack in ch.lacks
        ]
        return result(
            c,
            "missing",
            f"{found}; {need} needed — {plural(len(lacking), 'trial')} lacking data "
            "could make up the difference.",
            rows,
            missing,
        )
    if not checks:
        return result(c, "not_met", f"no {noun} recorded; {need} needed.", rows)
    tail = (
        "and the trials lacking data could not make up the difference"
        if lacking
        else "and no other trial lacks data that could change this"
    )
    return result(c, "not_met", f"{found}; {need} needed, {tail}.", rows)


def check_failed_trials(ctx: Context, c: FailedTrials) -> CriterionResult:
    checks = [
        _check_antidepressant(ctx, c, v)
        for v in ctx.assessment.trials
        if v.role in ("antidepressant", "combination")
    ]
    return _tally(ctx, c, checks, c.min_classes, "failed antidepressant trial")


def check_augmentation_trials(ctx: Context, c: AugmentationTrials) -> CriterionResult:
    checks = [
        _check_augmentation(ctx, c, v)
        for v in ctx.assessment.trials
        if v.role == "augmentation" and (not c.agents or {v.drug, v.drug_class} & set(c.agents))
    ]
    return _tally(ctx, c, checks, 1, "failed augmentation trial")


def failed_drugs(ctx: Context) -> set[str]:
    """Drugs with a trial that ended without response (for the concurrent-treatment rule)."""
    return {v.drug for v in ctx.assessment.trials if v.outcome in FAILED or v.counts_as_failure}
