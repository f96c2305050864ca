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

    def score(item: str, value: str, points: float, explanation: str) -> None:
        items.append(
            StageItem(item=item, value=value, points=points, explanation=explanation, citations=src)
        )

    failed_by_drug: dict[str, list[TrialVerdict]] = {}
    for v in data.verdicts:
        if v.counts_as_failure or "same_drug_already_counted" in v.reasons:
            failed_by_drug.setdefault(v.drug, []).append(v)
    half = p["optimisation_points"]
    for drug_id, trials in sorted(failed_by_drug.items()):
        score(
            "failed_trial",
            drug_id,
            p["points_per_failed_trial"],
            f"failed adequate trial of {drug_id}",
        )
        drug = kb.drugs[drug_id]
        usual_max = (
            drug.antidepressant_dose.usual_max_mg_per_day if drug.antidepressant_dose else None
        )
        top_dose = max((v.max_mg_per_day or 0.0 for v in trials), default=0.0)
        if usual_max is not None and top_dose >= usual_max:
            score(
                "dose_optimisation",
                drug_id,
                half,
                f"{drug_id} raised to {top_dose:g} mg/day, the usual maximum ({usual_max:g})",
            )
        top_weeks = max((v.weeks_at_adequate_dose or 0.0 for v in trials), default=0.0)
        if top_weeks >= p["duration_optimisation_weeks"]:
            score(
                "duration_optimisation",
                drug_id,
                half,
                f"{drug_id} held {top_weeks:g} weeks at an adequate dose "
                f"(≥ {p['duration_optimisation_weeks']:g})",
            )
        adds = sorted({a.drug for v in trials for a in _augmented(v, data, kb)})
        if adds:
            score(
                "augmentation_or_combination",
                drug_id,
                half,
                f"{drug_id} trial augmented or combined with {', '.join(adds)}",
            )
    failed_ect = [
        t
        for t in data.history.treatments
        if isinstance(t, Ect) and t.outcome in FAILED_OUTCOMES and data.in_episode(t.start, t.stop)
    ]
    if failed_ect:
        score("failed_ect", str(len(failed_ect)), p["ect_points"], "failed course of ECT")
    return StageResult(
        method="mgh_s",
        name=method.name,
        score=sum(i.points or 0.0 for i in items),
        items=tuple(items),
        verified=method.verified,
        notes=(method.note,) if method.note else (),
        citations=tuple(sorted(src)),
    )
