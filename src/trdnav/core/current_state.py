"""Where the patient is now: the ongoing treatment, how far its trial has gone, and how it works.

``current_state`` is pure. From the validated history (its trial outcomes already filled from the
scores), the trial verdicts and the scored measurements it derives:

- the ongoing treatments, and the current antidepressant trial (the latest-started ongoing
  antidepressant that is not an add-on), with its weeks on treatment and at an adequate dose;
- the response state of that trial, from the scores inside its window (the same instruments and
  cut-offs that derive a trial outcome: ``trajectory.derive_trial_outcome``), else from the outcome
  recorded for it: remission, response, partial response, non-response, too early to judge, or
  unknown; weeks since remission and whether it is sustained;
- a response later lost on the current drug: **tachyphylaxis** when the dose was not lowered
  before the loss (Targum 2014), **relapse** when it was (a lower maintenance dose);
- the plan step that follows (``knowledge/data/plan/pathway.yaml`` names and explains each step).

Every conclusion carries its rule and its citation keys. The rules are in ``docs/options.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.date_range import add_days
from trdnav.core.history import Diagnosis, History, Medication, Outcome
from trdnav.core.measures import ScoredMeasurement
from trdnav.core.reasons import Explanation, ReasonCode
from trdnav.core.trajectory import DerivedOutcome, derive_trial_outcome
from trdnav.knowledge.load import Knowledge

ResponseState = Literal[
    "remission",
    "response",
    "partial_response",
    "non_response",
    "too_early",
    "response_lost",
    "relapse",
    "unknown",
    "none",
]
Adequacy = Literal["adequate", "not_yet_adequate", "uncertain", "none"]
BIPOLAR = frozenset({Diagnosis.BIPOLAR_I_DEPRESSION, Diagnosis.BIPOLAR_II_DEPRESSION})
_NOT_YET = frozenset(
    {
        ReasonCode.DURATION_TOO_SHORT.value,
        ReasonCode.DOSE_BELOW_MINIMUM.value,
        ReasonCode.POOR_ADHERENCE.value,
        ReasonCode.SERUM_LEVEL_BELOW_TARGET.value,
    }
)
_UNKNOWN_INPUT = frozenset(
    {
        ReasonCode.ADHERENCE_UNKNOWN.value,
        ReasonCode.DOSE_UNKNOWN.value,
        ReasonCode.SERUM_LEVEL_UNKNOWN.value,
    }
)


class OngoingTreatment(BaseModel):
    """A treatment running on the assessment date."""

    model_config = ConfigDict(frozen=True)

    index: int  # position in history.treatments
    kind: str  # "antidepressant", "add-on", or the treatment type (ect, rtms, psychotherapy …)
    name: str  # drug id, or the treatment type
    since: date
    mg_per_day: float | None
    weeks_on: float
    weeks_at_adequate_dose: float | None


class CurrentState(BaseModel):
    """The patient's current treatment state, shown first in the plan (``plan_context``)."""

    model_config = ConfigDict(frozen=True)

    step: str  # a PlanStep of knowledge.plan
    label: str  # the step's label from the knowledge base
    drug: str | None = None  # the current antidepressant (drug id); None: no current trial
    trial_index: int | None = None
    ongoing: tuple[OngoingTreatment, ...]
    adequacy: Adequacy = "none"
    adequacy_detail: str = ""
    response: ResponseState = "none"
    response_detail: str = ""  # the measured or recorded basis, e.g. "PHQ-9 22 → 3 (−86.4 %)"
    response_source: Literal["scores", "recorded", "none"] = "none"
    weeks_since_remission: float | None = None
    sustained_remission: bool | None = None
    response_lost_on: date | None = None
    bipolar: bool
    ladder: str | None = None  # the bipolar ladder's statement, shown at the top of the plan
    explanations: tuple[Explanation, ...]
    citations: tuple[str, ...]
    verified: bool

    @property
    def summary(self) -> str:
        """One line: the step, the drug and the basis."""
        on = f" — {self.drug}" if self.drug else ""
        basis = f" ({self.response_detail})" if self.response_detail else ""
        return f"{self.label}{on}{basis}"


def _weeks(a: date, b: date) -> float:
    return round(max((b - a).days, 0) / 7, 1)


def _current_trial(
    history: History, verdicts: Sequence[TrialVerdict], as_of: date
) -> TrialVerdict | None:
    """The latest-started ongoing antidepressant trial (not an add-on); ties by drug id."""
    ongoing = [
        v
        for v in verdicts
        if v.role == "antidepressant"
        and v.augments is None
        and v.start <= as_of
        and (v.stop is None or v.stop > as_of)
    ]
    return max(ongoing, key=lambda v: (v.start, v.drug), default=None)


def _ongoing(
    history: History, verdicts: Sequence[TrialVerdict], as_of: date
) -> list[OngoingTreatment]:
    by_index = {v.index: v for v in verdicts}
    out: list[OngoingTreatment] = []
    for i, t in enumerate(history.treatments):
        if t.start > as_of or (t.stop is not None and t.stop <= as_of):
            continue
        if isinstance(t, Medication):
            v = by_index.get(i)
            steps = [d for d in t.doses if d.from_ <= as_of]
            kind = "antidepressant" if v is not None and v.role == "antidepressant" else "add-on"
            out.append(
                OngoingTreatment(
                    index=i,
                    kind=kind,
                    name=v.drug if v is not None else t.drug,
                    since=t.start,
                    mg_per_day=steps[-1].mg_per_day if steps else None,
                    weeks_on=_weeks(t.start, as_of),
                    weeks_at_adequate_dose=None if v is None else v.weeks_at_adequate_dose,
                )
            )
        else:
            out.append(
                OngoingTreatment(
                    index=i,
                    kind=t.type,
                    name=t.type,
                    since=t.start,
                    mg_per_day=None,
                    weeks_on=_weeks(t.start, as_of),
                    weeks_at_adequate_dose=None,
                )
            )
    return out


def _adequacy(v: TrialVerdict) -> tuple[Adequacy, str]:
    if v.adequate is True:
        weeks = v.weeks_at_adequate_dose
        return "adequate", f"{weeks:g} weeks at an adequate dose" if weeks is not None else ""
    problems = [e.message for e in v.explanations if e.code in _NOT_YET]
    if problems:
        return "not_yet_adequate", "; ".join(problems)
    unknown = [e.message for e in v.explanations if e.code in _UNKNOWN_INPUT]
    return "uncertain", "; ".join(unknown) or "adequacy cannot be judged"


def _dose_on(trial: Medication, day: date) -> float | None:
    steps = [d for d in sorted(trial.doses, key=lambda s: s.from_) if d.from_ <= day]
    return steps[-1].mg_per_day if steps else None


def _lost_response(
    trial: Medication,
    derived: DerivedOutcome | None,
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    as_of: date,
) -> tuple[date | None, date | None]:
    """(first responding score's date, date the response was lost) for the current trial.

    The loss date is the trial's ``response_lost_on`` (recorded, or filled from the scores by
    ``trial_measures``); it counts only while the latest score still does not meet response.
    """
    lost = trial.response_lost_on
    if lost is None or lost > as_of:
        return None, None
    if derived is not None and derived.outcome in (Outcome.RESPONSE, Outcome.REMISSION):
        return None, None  # the response was regained
    responded: date | None = None
    if derived is not None:
        inst = kb.instruments[derived.instrument_id]
        out = inst.outcomes
        base = derived.baseline.total
        for s in scored:
            total = s.score.total
            if s.instrument_id != inst.id or total is None or out is None:
                continue
            if not derived.baseline.date < s.date < lost:
                continue
            rr = out.response_reduction
            cut = out.remission_max_total
            if (cut is not None and total <= cut) or (
                rr is not None and base > 0 and total <= base * (1 - rr)
            ):
                responded = s.date
                break
    return responded, lost


def _remission_run(
    derived: DerivedOutcome,
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    start: date,
    as_of: date,
) -> tuple[date | None, int]:
    """The first date of the latest unbroken run of remission-level scores, and its length."""
    inst = kb.instruments[derived.instrument_id]
    cut = None if inst.outcomes is None else inst.outcomes.remission_max_total
    if cut is None:
        return None, 0
    points = sorted(
        (s.date, s.index, s.score.total)
        for s in scored
        if s.instrument_id == inst.id and s.score.total is not None and start < s.date <= as_of
    )
    first: date | None = None
    run = 0
    for day, _, total in reversed(points):
        assert total is not None  # noqa: S101 - filtered above
        if total > cut:
            break
        first, run = day, run + 1
    return first, run


_RECORDED: dict[Outcome, ResponseState] = {
    Outcome.REMISSION: "remission",
    Outcome.RESPONSE: "response",
    Outcome.PARTIAL_RESPONSE: "partial_response",
    Outcome.NO_RESPONSE: "non_response",
    Outcome.RESPONSE_LOST: "response_lost",
}
_DERIVED: dict[Outcome, ResponseState] = {
    Outcome.REMISSION: "remission",
    Outcome.RESPONSE: "response",
    Outcome.PARTIAL_RESPONSE: "partial_response",
    Outcome.NO_RESPONSE: "non_response",
}


def current_state(
    history: History,
    verdicts: Sequence[TrialVerdict],
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    as_of: date,
) -> CurrentState:
    """The current treatment state and the plan step it puts the patient at."""
    pathway = kb.plan.pathway
    keys: set[str] = set()
    verified = True
    notes: list[Explanation] = []
    bipolar = history.episode.diagnosis in BIPOLAR
    ladder = kb.plan.bipolar.statement if bipolar else None
    if bipolar:
        keys.update(kb.plan.bipolar.source)
        verified = verified and kb.plan.bipolar.verified

    def state(step: str) -> tuple[str, str]:
        nonlocal verified
        d = pathway.states[step]  # type: ignore[index]
        keys.update(d.source)
        verified = verified and d.verified
        return step, d.label

    ongoing = tuple(_ongoing(history, verdicts, as_of))
    v = _current_trial(history, verdicts, as_of)
    if v is None:
        step, label = state("no_current_treatment")
        notes.append(
            Explanation(
                code=ReasonCode.NO_CURRENT_ANTIDEPRESSANT,
                message=pathway.states["no_current_treatment"].rule,
                citations=pathway.states["no_current_treatment"].source,
            )
        )
        return CurrentState(  # the trial fields keep their "no current trial" defaults
            step=step,
            label=label,
            ongoing=ongoing,
            bipolar=bipolar,
            ladder=ladder,
            explanations=tuple(notes),
            citations=tuple(sorted(keys)),
            verified=verified,
        )

    trial = history.treatments[v.index]
    assert isinstance(trial, Medication)  # noqa: S101 - verdicts are of medications
    adequacy, adequacy_detail = _adequacy(v)
    keys.update(v.citations)
    window = [s for s in scored if add_days(trial.start, -60) <= s.date <= as_of]
    derived = derive_trial_outcome(window, kb, trial.start, None, as_of)
    response: ResponseState
    weeks_since: float | None = None
    sustained: bool | None = None
    if derived is not None:
        keys.update(derived.citations)
        verified = verified and derived.verified
        response = _DERIVED.get(derived.outcome, "unknown")
        source: Literal["scores", "recorded", "none"] = "scores"
        pct = "" if derived.percent_change is None else f" ({derived.percent_change:+.1f} %)"
        detail = (
            f"{derived.instrument} {derived.baseline.total:g} on "
            f"{derived.baseline.date.isoformat()} → {derived.end_point.total:g} on "
            f"{derived.end_point.date.isoformat()}{pct}"
        )
        if response == "remission":
            first, run = _remission_run(derived, window, kb, trial.start, as_of)
            if first is not None:
                weeks_since = _weeks(first, as_of)
                needed = kb.measurement.sustained_remission_consecutive
                sustained = run >= needed.value
                keys.update(needed.source)
                detail += (
                    f"; remission since {first.isoformat()} ({weeks_since:g} weeks, "
                    f"{run} consecutive score(s){', sustained' if sustained else ''})"
                )
        notes.append(
            Explanation(
                code=ReasonCode.STATE_FROM_SCORES,
                message=f"response state of {v.drug} from the scores: {derived.explanation}",
                citations=derived.citations,
            )
        )
    elif trial.outcome in _RECORDED:
        response, source = _RECORDED[trial.outcome], "recorded"
        detail = f"recorded outcome: {trial.outcome.value.replace('_', ' ')}"
        notes.append(
            Explanation(
                code=ReasonCode.STATE_FROM_RECORD,
                message=f"no scores in the trial window of {v.drug}: the recorded outcome "
                f"({trial.outcome.value.replace('_', ' ')}) is used",
                citations=(),
            )
        )
    else:
        response, source, detail = "unknown", "none", "no score and no recorded outcome"

    responded_on, lost_on = _lost_response(trial, derived, window, kb, as_of)
    if response not in ("remission", "response") and lost_on is not None:
        before = _dose_on(trial, responded_on or add_days(lost_on, -1))
        at_loss = _dose_on(trial, lost_on)
        lowered = before is not None and at_loss is not None and at_loss < before
        response = "relapse" if lowered else "response_lost"
        keys.update(kb.adequacy.counting_rules.source)
        when = f"response lost on {lost_on.isoformat()}"
        if lowered:
            when += f" after the dose was lowered from {before:g} to {at_loss:g} mg/day"
        else:
            when += " on an unchanged dose"
        detail = f"{when}; {detail}"

    if response in ("remission", "response"):
        step, label = state(
            "maintain_remission" if response == "remission" else "maintain_response"
        )
    elif response in ("relapse", "response_lost"):
        step, label = state(response)
    elif adequacy != "adequate":
        step, label = state("complete_trial")
        if response in ("non_response", "partial_response", "unknown"):
            note = f"too early to judge ({response.replace('_', ' ')} so far)"
            detail = f"{note}; {detail}" if detail else note
            response = "too_early"
        detail = f"{adequacy_detail}; {detail}" if detail else adequacy_detail
    elif response == "partial_response":
        step, label = state("partial_response")
    elif response == "non_response":
        step, label = state("non_response")
    else:
        step, label = state("response_unknown")
    notes.append(
        Explanation(
            code=ReasonCode.PLAN_STEP,
            message=f"{label}: {pathway.states[step].rule}",  # type: ignore[index]
            citations=pathway.states[step].source,  # type: ignore[index]
        )
    )
    return CurrentState(
        step=step,
        label=label,
        drug=v.drug,
        trial_index=v.index,
        ongoing=ongoing,
        adequacy=adequacy,
        adequacy_detail=adequacy_detail,
        response=response,
        response_detail=detail,
        response_source=source,
        weeks_since_remission=weeks_since,
        sustained_remission=sustained,
        response_lost_on=lost_on,
        bipolar=bipolar,
        ladder=ladder,
        explanations=tuple(notes),
        citations=tuple(sorted(keys)),
        verified=verified,
    )
