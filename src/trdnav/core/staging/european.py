"""European Staging Method (Souery et al. 1999).

Non-responder: one failed adequate trial. TRD: at least two failed adequate antidepressant
trials (of any class; the original does not require different classes), sub-staged TRD1–TRD5 by
the number of failed trials (2 → TRD1 … 6 or more → TRD5, matching the duration ranges
12–16 … 36 weeks–1 year of 6–8-week trials). Chronic resistant depression: TRD that includes an
augmentation strategy and has lasted at least 12 months of treatment.
"""

from __future__ import annotations

from trdnav.core.calendar import completed_months
from trdnav.core.staging.result import StageItem, StageResult, StagingInput
from trdnav.knowledge.load import Knowledge


def stage_european(data: StagingInput, kb: Knowledge) -> StageResult:
    method = kb.staging["european"]
    p = method.parameters
    src = tuple(method.source)
    counted = data.counted
    n = len({v.drug for v in counted})
    classes = {v.drug_class for v in counted}
    total_weeks = sum(v.weeks_at_adequate_dose or 0.0 for v in counted)
    aug = [
        v for v in data.verdicts if v.role != "antidepressant" and data.in_episode(v.start, v.stop)
    ]
    starts = [v.start for v in data.verdicts if data.in_episode(v.start, v.stop)]
    months_treated = completed_months(min(starts), data.as_of) if starts else 0
    if n == 0:
        stage, label = 0, "no failed adequate trial"
    elif n == 1:
        stage, label = 1, "non-responder"
    else:
        sub = min(n - 1, int(p["max_trd_substage"]))
        stage, label = 1 + sub, f"TRD{sub}"
        if aug and months_treated >= p["chronic_resistant_months"]:
            stage, label = 7, "chronic resistant depression"
    items = (
        StageItem(
            item="failed_trials",
            value=str(n),
            explanation=f"{n} failed adequate trial(s)",
            citations=src,
        ),
        StageItem(
            item="different_classes",
            value=str(len(classes)),
            explanation="classes of the failed trials (recorded; the method does not require two)",
            citations=src,
        ),
        StageItem(
            item="total_trial_weeks",
            value=f"{total_weeks:.1f}",
            explanation=f"{total_weeks:.1f} weeks at adequate doses across failed trials",
            citations=src,
        ),
        StageItem(
            item="augmentation",
            value="yes" if aug else "no",
            met=bool(aug),
            explanation="chronic resistant depression requires an augmentation strategy",
            citations=src,
        ),
        StageItem(
            item="months_treated",
            value=str(months_treated),
            met=months_treated >= p["chronic_resistant_months"],
            explanation=f"{months_treated} months since the first treatment of this episode",
            citations=src,
        ),
    )
    return StageResult(
        method="european",
        name=method.name,
        stage=stage,
        label=label,
        items=items,
        verified=method.verified,
        notes=(method.note,) if method.note else (),
        citations=tuple(sorted(src)),
    )
