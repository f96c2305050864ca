"""Massachusetts General Hospital staging (MGH-S; Fava 2003).

1 point per failed adequate antidepressant trial; 0.5 more per such trial for each of dose
optimisation, duration optimisation and augmentation/combination; 3 points for a failed ECT course.
The operational meaning of "optimisation" comes from the method's parameters in the knowledge base.
"""

from __future__ import annotations

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.history import FAILED_OUTCOMES, Ect
from trdnav.core.staging.result import StageItem, StageResult, StagingInput
from trdnav.knowledge.load import Knowledge


def _augmented(trial: TrialVerdict, data: StagingInput, kb: Knowledge) -> list[TrialVerdict]:
    out = []
    for v in data.verdicts:
        if v.augments is None or v.index == trial.index:
            continue
        base = kb.resolve_drug(v.augments)
        overlaps = v.start <= (trial.stop or data.as_of) and (v.stop or data.as_of) >= trial.start
        if base is not None and base.id == trial.drug and overlaps:
            out.append(v)
    return out


def stage_mgh_s(data: StagingInput, kb: Knowledge) -> StageResult:
    method = kb.staging["mgh_s"]
    p = method.parameters
    src = tuple(method.source)
    items: list[StageItem] = []
    score = 0.0
    failed_by_drug: dict[str, list[TrialVerdict]] = {}
    for v in data.verdicts:
        if v.counts_as_failure or "same_drug_already_counted" in v.reasons:
            failed_by_drug.setdefault(v.drug, []).append(v)
    for drug_id, trials in sorted(failed_by_drug.items()):
        score += p["points_per_failed_trial"]
        items.append(
            StageItem(
                item="failed_trial",
                value=drug_id,
                points=p["points_per_failed_trial"],
                explanation=f"failed adequate trial of {drug_id}",
                citations=src,
            )
        )
        drug = kb.drugs[drug_id]
        usual_max = (
            drug.antidepressant_dose.usual_max_mg_per_day if drug.antidepressant_dose else None
        )
        top_dose = max((v.max_mg_per_day or 0.0 for v in trials), default=0.0)
        if usual_max is not None and top_dose >= usual_max:
            score += p["optimisation_points"]
            items.append(
                StageItem(
                    item="dose_optimisation",
                    value=drug_id,
                    points=p["optimisation_points"],
                    explanation=f"{drug_id} raised to {top_dose:g} mg/day, the usual maximum "
                    f"({usual_max:g})",
                    citations=src,
                )
            )
        top_weeks = max((v.weeks_at_adequate_dose or 0.0 for v in trials), default=0.0)
        if top_weeks >= p["duration_optimisation_weeks"]:
            score += p["optimisation_points"]
            items.append(
                StageItem(
                    item="duration_optimisation",
                    value=drug_id,
                    points=p["optimisation_points"],
                    explanation=f"{drug_id} held {top_weeks:g} weeks at an adequate dose "
                    f"(≥ {p['duration_optimisation_weeks']:g})",
                    citations=src,
                )
            )
        adds = [a for v in trials for a in _augmented(v, data, kb)]
        if adds:
            score += p["optimisation_points"]
            items.append(
                StageItem(
                    item="augmentation_or_combination",
                    value=drug_id,
                    points=p["optimisation_points"],
                    explanation=f"{drug_id} trial augmented or combined with "
                    f"{', '.join(sorted({a.drug for a in adds}))}",
                    citations=src,
                )
            )
    failed_ect = [
        t
        for t in data.history.treatments
        if isinstance(t, Ect) and t.outcome in FAILED_OUTCOMES and data.in_episode(t.start, t.stop)
    ]
    if failed_ect:
        score += p["ect_points"]
        items.append(
            StageItem(
                item="failed_ect",
                value=str(len(failed_ect)),
                points=p["ect_points"],
                explanation="failed course of ECT",
                citations=src,
            )
        )
    return StageResult(
        method="mgh_s",
        name=method.name,
        score=score,
        items=tuple(items),
        verified=method.verified,
        notes=(method.note,) if method.note else (),
        citations=tuple(sorted(src)),
    )
