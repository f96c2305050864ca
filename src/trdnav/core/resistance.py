"""TRD determination for the current episode, and its flags.

TRD = at least two distinct antidepressant drugs, each given in an adequate trial in the current
episode, that failed (no response or partial response). Add-on trials (augmentation, combination),
ECT and other treatments do not add to that count; they score in staging. A trial whose adequacy or
outcome is unknown makes the status ``indeterminate`` when it could decide the answer.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.calendar import add_years
from trdnav.core.history import (
    FAILED_OUTCOMES,
    RESPONDED_OUTCOMES,
    Diagnosis,
    History,
    Outcome,
)
from trdnav.core.reasons import Explanation, Flag, ReasonCode
from trdnav.knowledge.load import Knowledge

BIPOLAR = frozenset({Diagnosis.BIPOLAR_I_DEPRESSION, Diagnosis.BIPOLAR_II_DEPRESSION})


class TrdDetermination(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str  # "trd" | "not_trd" | "indeterminate"
    failed_adequate_trials: int
    failed_drugs: tuple[str, ...]
    failed_classes: tuple[str, ...]
    flags: tuple[str, ...]
    missing: tuple[str, ...]
    explanations: tuple[Explanation, ...]
    citations: tuple[str, ...]


def _sort_key(v: TrialVerdict) -> tuple[date, date, str, float, float, float, str]:
    """Order by content only, so that the position of a trial in the file never matters."""
    return (
        v.start,
        v.stop or date.max,
        v.drug,
        -(v.max_mg_per_day or 0.0),
        -(v.adherence or 0.0),
        -(v.weeks_at_adequate_dose or 0.0),
        v.outcome.value,
    )


def count_distinct_failures(verdicts: list[TrialVerdict]) -> list[TrialVerdict]:
    """One verdict per drug counts; later trials of a drug already counted are marked so.

    Which trial of a drug counts is chosen by date, never by position in the file.
    """
    seen: set[str] = set()
    out: dict[int, TrialVerdict] = {}
    for v in sorted(verdicts, key=_sort_key):
        if v.counts_as_failure and v.drug in seen:
            dup = Explanation(
                code=ReasonCode.SAME_DRUG_ALREADY_COUNTED,
                message="an earlier failed adequate trial of the same drug is already counted",
                citations=(),
            )
            v = v.model_copy(
                update={
                    "counts_as_failure": False,
                    "reasons": (*v.reasons, dup.code),
                    "explanations": (*v.explanations, dup),
                }
            )
        elif v.counts_as_failure:
            seen.add(v.drug)
        out[v.index] = v
    return [out[v.index] for v in verdicts]


def _tachyphylaxis(history: History, verdicts: list[TrialVerdict]) -> list[str]:
    """Drugs on which a response was later lost (same drug, later failed trial, or recorded)."""
    found: set[str] = set()
    for v in verdicts:
        trial = history.treatments[v.index]
        if getattr(trial, "response_lost_on", None) is not None:
            found.add(v.drug)
        if v.outcome == Outcome.RESPONSE_LOST:
            found.add(v.drug)
        if v.outcome in RESPONDED_OUTCOMES:
            for later in verdicts:
                if (
                    later.drug == v.drug
                    and later.index != v.index
                    and later.start >= (v.stop or v.start)
                    and later.outcome in FAILED_OUTCOMES
                ):
                    found.add(v.drug)
    return sorted(found)


def determine_trd(
    history: History, verdicts: list[TrialVerdict], kb: Knowledge, as_of: date
) -> TrdDetermination:
    rules = kb.adequacy
    need = int(rules.trd_min_failed_trials.value)
    counted = [v for v in verdicts if v.counts_as_failure]
    failed_drugs = sorted({v.drug for v in counted})
    failed_classes = sorted({v.drug_class for v in counted})
    n = len(failed_drugs)
    cites = set(rules.trd_min_failed_trials.source) | set(rules.counting_rules.source)
    explanations: list[Explanation] = []
    missing: list[str] = []

    undecided = {
        v.drug
        for v in verdicts
        if v.role == "antidepressant"
        and v.drug not in failed_drugs
        and "before_current_episode" not in v.reasons
        and (v.adequate is None or (v.adequate and v.outcome == Outcome.UNKNOWN))
    }
    if n >= need:
        status = "trd"
        explanations.append(
            Explanation(
                code=ReasonCode.TWO_OR_MORE_FAILURES,
                message=f"{n} distinct antidepressants failed adequate trials in this episode "
                f"({', '.join(failed_drugs)}); TRD is at least {need}",
                citations=rules.trd_min_failed_trials.source,
            )
        )
    elif n + len(undecided) >= need:
        status = "indeterminate"
        for v in verdicts:
            if v.drug in undecided:
                what = [
                    e.message
                    for e in v.explanations
                    if e.code
                    in {
                        "dose_unknown",
                        "adherence_unknown",
                        "serum_level_unknown",
                        "outcome_unknown",
                    }
                ]
                missing.append(f"treatments[{v.index}] {v.drug}: " + "; ".join(what))
        explanations.append(
            Explanation(
                code=ReasonCode.UNKNOWN_TRIALS_COULD_CHANGE_STATUS,
                message=f"{n} failed adequate trial(s) known; {len(undecided)} more trial(s) could "
                f"count but lack information: " + " | ".join(missing),
                citations=rules.trd_min_failed_trials.source,
            )
        )
    else:
        status = "not_trd"
        explanations.append(
            Explanation(
                code=ReasonCode.FEWER_THAN_TWO_FAILURES,
                message=f"{n} distinct antidepressant(s) failed an adequate trial in this episode; "
                f"TRD needs at least {need}",
                citations=rules.trd_min_failed_trials.source,
            )
        )

    flags: list[str] = []
    if status == "trd":
        if any(v.outcome == Outcome.PARTIAL_RESPONSE for v in counted):
            flags.append(Flag.PARTIAL_RESISTANCE)
        else:
            flags.append(Flag.COMPLETE_RESISTANCE)
    chronic_years = rules.chronic_after_years.value
    if (
        add_years(history.episode.onset, int(chronic_years)) <= as_of
        or history.episode.diagnosis == Diagnosis.PERSISTENT_DEPRESSIVE_DISORDER
    ):
        flags.append(Flag.CHRONIC)
        cites.update(rules.chronic_after_years.source)
    in_episode = [
        v
        for v in verdicts
        if v.role == "antidepressant" and "before_current_episode" not in v.reasons
    ]
    inadequate = [
        v
        for v in in_episode
        if v.adequate is False
        and v.reasons != ("stopped_for_intolerance",)
        and any(
            r in v.reasons
            for r in (
                "dose_below_minimum",
                "duration_too_short",
                "poor_adherence",
                "serum_level_below_target",
            )
        )
        and "ongoing" not in v.reasons
    ]
    adequate = [v for v in in_episode if v.adequate]
    if len(inadequate) >= rules.pseudo_resistance_min_inadequate.value and len(inadequate) > len(
        adequate
    ):
        flags.append(Flag.PSEUDO_RESISTANCE_SUSPECTED)
        cites.update(rules.pseudo_resistance_min_inadequate.source)
    tachy = _tachyphylaxis(history, verdicts)
    if tachy:
        flags.append(Flag.TACHYPHYLAXIS)
    if history.episode.diagnosis in BIPOLAR:
        flags.append(Flag.BIPOLARITY_ON_RECORD)
        explanations.append(
            Explanation(
                code=ReasonCode.BIPOLAR_DIAGNOSIS,
                message="bipolar diagnosis on record: the two-failed-antidepressant definition "
                "of TRD "
                "is defined for major depressive disorder; in bipolar depression "
                "antidepressant failures do not carry the same meaning",
                citations=rules.counting_rules.source,
            )
        )
    for e in explanations:
        cites.update(e.citations)
    return TrdDetermination(
        status=status,
        failed_adequate_trials=n,
        failed_drugs=tuple(failed_drugs),
        failed_classes=tuple(failed_classes),
        flags=tuple(flags),
        missing=tuple(missing),
        explanations=tuple(explanations),
        citations=tuple(sorted(cites)),
    )
