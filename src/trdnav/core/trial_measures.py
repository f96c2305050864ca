"""What the scores say about one medication trial: its outcome when none was recorded, and a
response later lost on the same drug (tachyphylaxis), both from the trial's own window."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, timedelta

from trdnav.core.date_range import add_days
from trdnav.core.history import Medication, Outcome
from trdnav.core.measures import ScoredMeasurement
from trdnav.core.trajectory import DerivedOutcome, derive_trial_outcome
from trdnav.knowledge.load import Knowledge


def response_lost_on(
    trial: Medication,
    derived: DerivedOutcome,
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    as_of: date,
) -> date | None:
    """The first score inside the trial, after a response, that no longer meets response."""
    inst = kb.instruments[derived.instrument_id]
    out = inst.outcomes
    if out is None or out.response_reduction is None or derived.baseline.total <= 0:
        return None
    grace = timedelta(days=kb.measurement.trial_window_grace_days.value)
    end = min((trial.stop or as_of) + grace, as_of)
    base = derived.baseline.total
    responded = False
    for s in scored:
        total = s.score.total
        if s.instrument_id != inst.id or total is None:
            continue
        if not trial.start < s.date <= end or s.date <= derived.baseline.date:
            continue
        meets = total <= base * (1 - out.response_reduction) or (
            out.remission_max_total is not None and total <= out.remission_max_total
        )
        if meets:
            responded = True
        elif responded:
            return s.date
    return None


def _date(s: ScoredMeasurement) -> date:
    return s.date


def measured_trial(
    trial: Medication, scored: Sequence[ScoredMeasurement], kb: Knowledge, as_of: date
) -> tuple[Medication, DerivedOutcome | None]:
    """The trial with its outcome (when unknown) and ``response_lost_on`` filled from scores."""
    may_respond = trial.outcome in (
        Outcome.UNKNOWN,
        Outcome.RESPONSE,
        Outcome.REMISSION,
        Outcome.RESPONSE_LOST,
    )
    if not may_respond or (trial.outcome is not Outcome.UNKNOWN and trial.response_lost_on):
        return trial, None  # nothing the scores could add
    # only the scores that can fall in the trial's window (scored is sorted by date)
    m = kb.measurement
    first = add_days(trial.start, -m.trial_baseline_lookback_days.value)
    last = add_days(trial.stop or as_of, m.trial_window_grace_days.value)
    window = scored[bisect_left(scored, first, key=_date) : bisect_right(scored, last, key=_date)]
    if len(window) < 2:
        return trial, None
    derived = derive_trial_outcome(window, kb, trial.start, trial.stop, as_of)
    if derived is None:
        return trial, None
    update: dict[str, object] = {}
    lost = trial.response_lost_on
    if lost is None:
        lost = response_lost_on(trial, derived, window, kb, as_of)
        if lost is not None:
            update["response_lost_on"] = lost
    if trial.outcome is Outcome.UNKNOWN:
        if lost is not None and derived.outcome not in (Outcome.RESPONSE, Outcome.REMISSION):
            # a response reached and then lost is its own outcome, not a non-response
            derived = derived.model_copy(
                update={
                    "outcome": Outcome.RESPONSE_LOST,
                    "explanation": f"{derived.explanation}; but a response was reached inside "
                    f"the trial and lost on {lost.isoformat()} on the same drug: response lost "
                    "(tachyphylaxis), not a non-response",
                }
            )
        update["outcome"] = derived.outcome
    used = derived if "outcome" in update else None
    return (trial.model_copy(update=update) if update else trial), used
